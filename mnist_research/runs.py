"""List the runs under a folder: what each is, how far it got, how well it did.

Usage:
  python -m mnist_research.runs [--logdir=runs] [--json]

One row per run dir (the folders under LOGDIR, and the runs one folder further
down, as a sweep writes them), oldest first: its name, experiment, model
family, dataset, epochs done / planned, its status (running, with the
training process's PID; finished, stopped early, or pruned by a search;
unfinished; not started), its best validation accuracy and test accuracy, and
the device it trained on. Folders that hold no run, and runs whose files are
damaged, are summed up in one line under the table. ``--run_dir=latest`` in
``evaluate``, ``predict`` and ``report`` picks the newest finished run listed here.
"""

from __future__ import annotations

import json
import os
import sys

from absl import flags

from mnist_research import command, reading_commands
from mnist_research.analysis import run_list, run_records

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """The folder to list, and the format."""
    command.define_logdir_flag(fv, "The folder that holds the run dirs.")
    reading_commands.define_json_flag(fv, "the table")


def define_latest_flag(fv: flags.FlagValues) -> None:
    """``--logdir``, where ``--run_dir=latest`` looks (evaluate, predict, report)."""
    command.define_logdir_flag(
        fv, "Where --run_dir=latest looks: it names the newest finished run under this folder."
    )


def chosen_run_dir() -> str:
    """``--run_dir``, with ``latest`` replaced by the newest finished run under ``--logdir``.

    The run picked for ``latest`` is named on stderr (stdout may be JSON).
    """
    run_dir = run_records.resolve_run_dir(FLAGS.run_dir, FLAGS.logdir)
    if run_dir != FLAGS.run_dir:
        print(f"--run_dir={run_records.LATEST}: {run_dir}", file=sys.stderr)
    return run_dir


def _list() -> int:
    listing = run_list.find_runs(FLAGS.logdir)
    rows = run_list.rows(listing.runs)
    if FLAGS.json:
        print(
            json.dumps(
                {
                    "logdir": os.path.abspath(FLAGS.logdir),
                    "runs": rows,
                    "foreign": listing.foreign,
                    "damaged": listing.damaged,
                },
                indent=2,
            )
        )
        return 0
    print(run_list.to_text(rows) if rows else f"no runs under {FLAGS.logdir}")
    skipped = listing.skipped_line()
    if skipped:
        print(skipped)
    return 0


main = command.main_without_arguments(_list)


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
