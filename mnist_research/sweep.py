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
"""

from __future__ import annotations

import os
import subprocess
import sys

from absl import app, flags, logging

from mnist_research import files
from mnist_research.analysis import sweep_table as sweep_lib
from mnist_research.errors import ConfigError, MnistResearchError, run_guarded
from mnist_research.training import run_dir as run_dir_lib

FLAGS = flags.FLAGS
flags.DEFINE_list("experiments", ["baseline"], "Flagfile names in --experiments_dir.")
flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds to run each experiment with.")
flags.DEFINE_string("experiments_dir", "experiments", "Where <experiment>.flags live.")
flags.DEFINE_string("data_dir", None,
                    "Passed to every run (overrides the flagfiles' --data_dir); sweep "
                    "experiments on other datasets in a separate call.")
flags.DEFINE_string("output", os.path.join("runs", "sweep"), "Parent of the runs and results.")


def _seeds() -> list[int]:
    try:
        return [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise app.UsageError(f"--seeds: expected integers, got {','.join(FLAGS.seeds)}") from None


def run_one(flagfile: str, seed: int, run_dir: str, extra: list[str]) -> dict:
    """Trains (or reuses) one run; returns its final metrics with the seed added."""
    metrics_path = os.path.join(run_dir, run_dir_lib.METRICS_FILE)
    metrics = files.read_json(metrics_path)
    if not (metrics and metrics.get("finished")):
        command = [sys.executable, "-m", "mnist_research.train", f"--flagfile={flagfile}",
                   f"--seed={seed}", f"--run_dir={run_dir}"]
        if FLAGS.data_dir:
            command.append(f"--data_dir={FLAGS.data_dir}")
        command += extra
        logging.info("Running %s", " ".join(command))
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise MnistResearchError(f"{run_dir}: training failed (exit {result.returncode}); "
                                     f"rerun the sweep to resume")
        metrics = files.read_json(metrics_path)
    else:
        logging.info("Reusing finished run %s", run_dir)
    return {**metrics, "seed": seed}


def _sweep(extra: list[str]) -> int:
    seeds = _seeds()
    runs: dict[str, list[dict]] = {}
    for experiment in FLAGS.experiments:
        flagfile = os.path.join(FLAGS.experiments_dir, f"{experiment}.flags")
        if not os.path.isfile(flagfile):
            raise ConfigError(f"{flagfile}: no such experiment flagfile")
    for experiment in FLAGS.experiments:
        flagfile = os.path.join(FLAGS.experiments_dir, f"{experiment}.flags")
        runs[experiment] = [
            run_one(flagfile, seed, os.path.join(FLAGS.output, f"{experiment}-seed{seed}"),
                    extra)
            for seed in seeds]
    paths = sweep_lib.write(FLAGS.output, runs)
    print(open(paths["markdown"], encoding="utf-8").read())
    print("\n".join(f"{name}: {path}" for name, path in paths.items()))
    return 0


def main(argv):
    return run_guarded(lambda: _sweep(argv[1:]))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
