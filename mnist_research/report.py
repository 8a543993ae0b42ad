"""Regenerate every report of a finished run, without training.

Usage:
  python -m mnist_research.report --run_dir=DIR|latest [--logdir=runs] [--data_dir=DIR]
      [--from_checkpoint]

Reads ``config.json`` and ``metrics.json`` (the history), classifies the run's
test split with its export (or latest checkpoint), and rewrites
``reports/*.png`` and ``reports/report.html``; ``metrics.json`` gains any
per-class fields it lacks.

``--run_dir=latest`` names the newest finished run under ``--logdir`` (default
``runs``; ``python -m mnist_research.runs`` lists them).
"""

from __future__ import annotations

from absl import flags

from mnist_research import command, logs, reading_commands, runs

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """A finished run and where its data is."""
    reading_commands.define_finished_run_flags(fv)
    runs.define_latest_flag(fv)


def _report() -> int:
    # TensorFlow is imported here, after the flags are parsed: a bad argument fails at once.
    logs.quiet_tensorflow()
    from mnist_research.analysis import run_analysis

    paths = run_analysis.regenerate_reports(
        runs.chosen_run_dir(), FLAGS.data_dir, FLAGS.from_checkpoint
    )
    for name, path in paths.items():
        print(f"{name:>17}: {path}")
    return 0


main = command.main_without_arguments(_report)


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
