"""Evaluate a trained run on a data split, without training.

Usage:
  python -m mnist_research.evaluate --run_dir=DIR|latest [--logdir=runs] [--data_dir=DIR]
      [--split=test|validation|train] [--from_checkpoint | --model=FILE.tflite|FILE.onnx]

Loads ``RUN_DIR/export`` (or the latest checkpoint, or an exported ``.tflite``
or ``.onnx`` file run by its own runtime: LiteRT or ``tf.lite.Interpreter``,
onnxruntime; ``python -m mnist_research.export`` writes them), rebuilds the split the run
used from its ``config.json`` (same dataset, limits and validation fraction),
prints accuracy, loss, the confusion matrix and per-class scores, and writes
them to ``RUN_DIR/evaluation-<split>.json`` (``evaluation-<split>-<file name>.json``
for ``--model``).

``--run_dir=latest`` names the newest finished run under ``--logdir`` (default
``runs``; ``python -m mnist_research.runs`` lists them).
"""

from __future__ import annotations

from absl import flags

from mnist_research import command, logs, reading_commands, runs

FLAGS = flags.FLAGS
# The splits a DataConfig yields: the test set, and the training set's two parts.
SPLITS = ("test", "validation", "train")


def define_flags(fv: flags.FlagValues) -> None:
    """A finished run, a split, and where the data is."""
    reading_commands.define_finished_run_flags(fv)
    runs.define_latest_flag(fv)
    flags.DEFINE_enum("split", "test", list(SPLITS), "Which split to evaluate.", flag_values=fv)
    flags.DEFINE_string(
        "model",
        None,
        "An exported .tflite or .onnx file to evaluate with its own runtime instead of "
        "the SavedModel.",
        flag_values=fv,
    )
    flags.register_validator(
        "model",
        lambda model: not (model and fv["from_checkpoint"].value),
        "--model and --from_checkpoint name two different models; give one",
        flag_values=fv,
    )


def _evaluate() -> int:
    # TensorFlow is imported here, after the flags are parsed: a bad argument fails at once.
    logs.quiet_tensorflow()
    from mnist_research.analysis import run_analysis

    summary, path = run_analysis.evaluate_split(
        runs.chosen_run_dir(), FLAGS.split, FLAGS.data_dir, FLAGS.from_checkpoint, FLAGS.model
    )
    print(f"{FLAGS.split} split, model {summary['model']}")
    print(run_analysis.format_summary(summary))
    print(f"written to {path}")
    return 0


main = command.main_without_arguments(_evaluate)


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
