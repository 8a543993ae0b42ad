"""Export a finished run's model as TFLite (float or int8) or ONNX, verified before it is kept.

Usage:
  python -m mnist_research.export --run_dir=DIR|latest --format=tflite|tflite_int8|onnx
      [--logdir=runs] [--data_dir=DIR]

Converts ``RUN_DIR/export`` (the SavedModel) into ``RUN_DIR/export.tflite``,
``RUN_DIR/export_int8.tflite`` (int8, calibrated on the run's own training
split) or ``RUN_DIR/export.onnx`` (needs ``pip install -e ".[onnx]"``). The
converted model is run by its own runtime on the run's test split and kept only
if it gives the SavedModel's class on at least 99.9 % of the images (int8: at
most 0.5 points of accuracy lost); otherwise it is refused with one error line
and nothing is written. ``python -m mnist_research.evaluate --model=FILE``
evaluates a written file.
"""

from __future__ import annotations

from absl import flags

from mnist_research import command, reading_commands, runs
from mnist_research.rundir import layout

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """A finished run, the format, and where the data is."""
    reading_commands.define_finished_run_flags(fv, checkpoint=False)
    runs.define_latest_flag(fv)
    flags.DEFINE_enum(
        "format",
        None,
        list(layout.PORTABLE_FILES),
        "The format to export to.",
        required=True,
        flag_values=fv,
    )


def _export() -> int:
    # TensorFlow is imported here, after the flags are parsed: a bad argument fails at once.
    from mnist_research.inference import portable

    path, verified = portable.export_run(runs.chosen_run_dir(), FLAGS.format, FLAGS.data_dir)
    print(
        f"{path}: the SavedModel's class on {verified.agreement:.2%} of "
        f"{verified.num_images} test images; accuracy {verified.accuracy:.4f} "
        f"(SavedModel {verified.reference_accuracy:.4f})"
    )
    return 0


main = command.main_without_arguments(_export)


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
