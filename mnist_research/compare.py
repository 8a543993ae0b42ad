"""Compare finished runs side by side: a GPU run against a CPU run, an MLP against a CNN.

Usage:
  python -m mnist_research.compare RUN_DIR [RUN_DIR ...] [--output=runs/compare] [--json]

One row per run: its model family, every setting in which the runs'
``config.json`` differ, the device, replicas and precision it ran with, its
steady-state seconds per epoch and training examples/s (epochs 2..N: the first
epoch also compiles the step), the speed-up over the first run, its test
accuracy and the difference from the first run's. Prints the table (markdown,
or JSON with ``--json``) and writes ``OUTPUT/compare.md``, ``OUTPUT/compare.json``
and ``OUTPUT/compare.png`` (validation accuracy and loss curves zoomed on the
last epochs, where the runs differ, beside the speed bars).
"""

from __future__ import annotations

import os
import sys

from absl import flags

from mnist_research import command, reading_commands
from mnist_research.analysis import compare_table as compare_lib

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """Where the comparison is written, and in which format it is printed."""
    flags.DEFINE_string(
        "output",
        os.path.join("runs", "compare"),
        "Where compare.md, compare.json and compare.png are written.",
        flag_values=fv,
    )
    reading_commands.define_json_flag(fv, "markdown (the paths written go to stderr)")


def _compare(run_dirs: list[str]) -> int:
    runs = [compare_lib.load_run(d) for d in run_dirs]
    rows = compare_lib.rows(runs)
    paths = compare_lib.write(FLAGS.output, runs, rows)
    print(compare_lib.to_json(rows) if FLAGS.json else compare_lib.to_markdown(rows), end="")
    print(
        "\n".join(f"{name}: {path}" for name, path in paths.items()),
        file=sys.stderr if FLAGS.json else sys.stdout,
    )
    return 0


main = reading_commands.main_with_arguments(_compare, "give one or more run directories")


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
