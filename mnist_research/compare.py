"""Compare finished runs side by side (e.g. a GPU run against a CPU run).

Usage:
  python -m mnist_research.compare RUN_DIR [RUN_DIR ...] [--output=runs/compare]

Prints a table of configuration, device, replicas, accuracy, loss, epoch time
and throughput, with speed-ups relative to the first run, and writes it as
``OUTPUT/compare.md`` next to ``OUTPUT/compare.png`` (validation accuracy and
loss curves overlaid, and a throughput bar chart).
"""

from __future__ import annotations

import os

from absl import flags

from mnist_research import command
from mnist_research.analysis import compare_table as compare_lib

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """Where the comparison is written."""
    flags.DEFINE_string("output", os.path.join("runs", "compare"),
                        "Where compare.md and compare.png are written.", flag_values=fv)


def _compare(run_dirs: list[str]) -> int:
    runs = [compare_lib.load_run(d) for d in run_dirs]
    rows = compare_lib.rows(runs)
    markdown = compare_lib.to_markdown(rows)
    paths = compare_lib.write(FLAGS.output, runs, rows)
    print(markdown)
    print("\n".join(f"{name}: {path}" for name, path in paths.items()))
    return 0


main = command.main_with_arguments(_compare, "give one or more run directories")


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
