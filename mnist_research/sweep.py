"""Run experiments × seeds and tabulate the results.

Usage:
  python -m mnist_research.sweep --experiments=baseline,no_batchnorm,no_dropout,wide \\
      --seeds=1,2,3 [--data_dir=DIR] [--output=runs/sweep] [-- EXTRA_TRAIN_FLAGS...]

Each (experiment, seed) trains in its own process (``python -m
mnist_research.train --flagfile=experiments/<experiment>.flags --seed=S``) into
``OUTPUT/<experiment>-seed<S>``; a run that already finished is reused, an
interrupted one resumes. Then ``OUTPUT/results.md``, ``results.csv`` and
``sweep.png`` are written. Every run lands under OUTPUT, so
``tensorboard --logdir OUTPUT`` compares them in the HParams dashboard.

EXTRA_TRAIN_FLAGS go to every run; one that sets what the sweep sets per run
(``--seed``, ``--experiment``, ``--run_dir``, ``--logdir``, ``--resume``,
``--data_dir``), also from a flagfile there, is refused before any run starts.
"""

from __future__ import annotations

import os
import re
import sys

from absl import app, flags

from mnist_research import command, interrupts
from mnist_research.analysis import sweep_runs, sweep_table
from mnist_research.errors import run_guarded
from mnist_research.studies import grid
from mnist_research.studies.study import locked

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """Which experiments and seeds, and where the runs and tables go."""
    flags.DEFINE_list(
        "experiments", ["baseline"], "Flagfile names in --experiments_dir.", flag_values=fv
    )
    flags.DEFINE_list(
        "seeds", ["1", "2", "3"], "Seeds to run each experiment with.", flag_values=fv
    )
    flags.DEFINE_string(
        "experiments_dir", "experiments", "Where <experiment>.flags live.", flag_values=fv
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Passed to every run (overrides the flagfiles' --data_dir); sweep "
        "experiments on other datasets in a separate call.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "output", os.path.join("runs", "sweep"), "Parent of the runs and results.", flag_values=fv
    )


def _seeds() -> list[int]:
    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise app.UsageError(f"--seeds: expected integers, got {','.join(FLAGS.seeds)}") from None
    _check_list("seeds", seeds)
    return seeds


def _check_list(name: str, values: list) -> None:
    """Refuses an empty list, or one naming an item twice (it would count twice in the table)."""
    if not values:
        raise app.UsageError(f"--{name} is empty; name at least one")
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise app.UsageError(f"--{name} names {', '.join(repeated)} more than once")


def _experiments() -> list[str]:
    names = list(FLAGS.experiments)
    _check_list("experiments", names)
    for name in names:
        if not _NAME.fullmatch(name) or name.startswith("."):
            raise app.UsageError(
                f"--experiments: {name!r} is not a flagfile name (letters, "
                f"digits, '_', '-', '.'; no folders: put the flagfile in "
                f"--experiments_dir)"
            )
    return names


# An experiment name becomes a run dir name under --output: no path parts.
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _sweep(extra: list[str]) -> int:
    experiments, seeds = _experiments(), _seeds()
    sweep_table.check_outputs(FLAGS.output)  # before any run: a user's results.md is kept
    try:
        with interrupts.handle_signals():
            runs = grid.run_grid(
                experiments, seeds, FLAGS.experiments_dir, FLAGS.output, FLAGS.data_dir, extra
            )
    except sweep_runs.SweepStopped as e:
        print(
            f"{e.name}: sweep stopped; the training of {e.run_dir} was stopped too (exit "
            f"{e.child_status}), its last checkpoint kept; rerun the same sweep command to "
            f"resume",
            file=sys.stderr,
            flush=True,
        )
        return e.exit_status
    except interrupts.Interrupted as e:
        print(
            f"{e.name}: sweep stopped between runs; rerun the same sweep command to resume",
            file=sys.stderr,
            flush=True,
        )
        return e.exit_status
    # Sweeps of other grids may share the output: one writes its table, figure and CSV at a time.
    with locked(FLAGS.output):
        paths = sweep_table.write(FLAGS.output, runs)
        with open(paths["markdown"], encoding="utf-8") as f:
            table = f.read()
    print(table)
    print("\n".join(f"{name}: {path}" for name, path in paths.items()))
    return 0


def main(argv):
    # Each run logs as the sweep does (flags after -- can still say otherwise).
    return run_guarded(lambda: _sweep([f"--verbosity={FLAGS.verbosity}", *argv[1:]]))


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
