"""Benchmark: the project's loop and commands vs ``model.fit``, the notebook script, PyTorch, JAX.

Usage:
  python -m mnist_research.benchmark --data_dir=../shared/datasets/mnist
  python -m mnist_research.benchmark --data_dir=... --parts=steady --repeats=3
  python -m mnist_research.benchmark --smoke      # tiny synthetic data: checks, not timings

Every side runs once per repetition, one after another, so ratios compare
figures taken minutes apart on the same machine; medians and the samples are
reported. Parts: ``steady`` (epoch times in one process: the project loop,
``model.fit`` of the identical model and pipeline with and without XLA, the
original notebook's ``model.fit``; the input pipeline and the raw-TF floor), ``peers``
(whole 15-epoch runs of the project, PyTorch and JAX, compilation included;
PyTorch and JAX are optional and skipped when not importable) and ``whole``
(the notebook script and the baseline ``train`` command from process start to
exit, and where the command's time goes). Prints Markdown tables and writes
every figure to ``--output`` (JSON). See ``mnist_research/benchmarks/``.
"""

from __future__ import annotations

import os

from absl import flags, logging

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """Data, parts, repetitions and where the JSON goes."""
    from mnist_research.benchmarks import suite

    flags.DEFINE_string(
        "data_dir",
        None,
        "Real data (npz or IDX); default: synthetic MNIST-shaped data.",
        flag_values=fv,
    )
    flags.DEFINE_list(
        "parts", list(suite.PARTS), "Which parts to run: steady, peers, whole.", flag_values=fv
    )
    flags.DEFINE_integer("epochs", 15, "Epochs of every run.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("repeats", 2, "Repetitions of every run.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer(
        "steps_per_loop",
        50,
        "Steps per tf.function call of the project loop.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "smoke", False, "Tiny synthetic data, 2 epochs, 1 repetition.", flag_values=fv
    )
    flags.DEFINE_string(
        "output",
        os.path.join("runs", "benchmark.json"),
        "Where to write the JSON results.",
        flag_values=fv,
    )


def main(argv):
    from mnist_research import command

    return command.main_without_arguments(_benchmark)(argv)


def _benchmark() -> int:
    from mnist_research import logs, output_files

    logs.quiet_tensorflow()
    from mnist_research.benchmarks import report, suite
    from mnist_research.errors import ConfigError
    from mnist_research.files import write_json

    output_files.check_outputs([FLAGS.output], [], _is_benchmark)  # checked before hours of runs
    unknown = sorted(set(FLAGS.parts) - set(suite.PARTS))
    if unknown:
        raise ConfigError(
            f"--parts: unknown {', '.join(unknown)}; expected some of {', '.join(suite.PARTS)}"
        )
    results = suite.run(
        None if FLAGS.smoke else FLAGS.data_dir,
        2 if FLAGS.smoke else FLAGS.epochs,
        1 if FLAGS.smoke else FLAGS.repeats,
        FLAGS.steps_per_loop,
        FLAGS.parts,
        log=logging.info,
    )
    results["targets"] = report.targets(results)
    print(report.format_tables(results))
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    write_json(FLAGS.output, results)
    logging.info("Wrote %s", FLAGS.output)
    return 0


def _is_benchmark(path: str) -> bool:
    """Whether ``path`` holds results this command wrote (a JSON object with ``targets``)."""
    from mnist_research.rundir import records

    try:
        results = records.read_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and "targets" in results


def run():
    from mnist_research import command

    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
