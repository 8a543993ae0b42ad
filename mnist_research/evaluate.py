"""Evaluate a trained run on a data split, without training.

Usage:
  python -m mnist_research.evaluate --run_dir=DIR [--data_dir=DIR]
      [--split=test|validation|train] [--from_checkpoint]

Loads ``RUN_DIR/export`` (or the latest checkpoint), rebuilds the split the run
used from its ``config.json`` (same dataset, limits and validation fraction),
prints accuracy, loss, the confusion matrix and per-class scores, and writes
them to ``RUN_DIR/evaluation-<split>.json``.
"""

from __future__ import annotations

import os

from absl import app, flags

from mnist_research import files
from mnist_research.analysis import metrics as evaluation
from mnist_research.errors import run_guarded
from mnist_research.inference import finished_run as restore

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A finished run directory.", required=True)
flags.DEFINE_string("data_dir", None, "Where the data is (default: the run's own --data_dir).")
flags.DEFINE_enum("split", "test", list(restore.SPLITS), "Which split to evaluate.")
flags.DEFINE_boolean("from_checkpoint", False,
                     "Load the latest checkpoint instead of the SavedModel export.")


def format_summary(summary: dict) -> str:
    """Accuracy, loss, confusion matrix and per-class table as text."""
    lines = [f"accuracy {summary['accuracy']:.4f}  loss {summary['loss']:.4f}  "
             f"({summary['examples']} examples)", "", "confusion matrix (rows: true, "
             "columns: predicted)"]
    matrix = summary["confusion_matrix"]
    lines.append("     " + "".join(f"{c:>6}" for c in range(len(matrix))))
    lines += [f"{r:>4} " + "".join(f"{v:>6}" for v in row) for r, row in enumerate(matrix)]
    per_class = summary["per_class"]
    lines += ["", "class  precision  recall      f1  support"]
    lines += [f"{c:>5}  {per_class['precision'][c]:>9.4f}  {per_class['recall'][c]:>6.4f}  "
              f"{per_class['f1'][c]:>6.4f}  {per_class['support'][c]:>7}"
              for c in range(len(per_class["f1"]))]
    return "\n".join(lines)


def _evaluate() -> int:
    config = restore.load_config(FLAGS.run_dir)
    logits_fn, source = restore.load_logits_fn(FLAGS.run_dir, FLAGS.from_checkpoint)
    images, labels = restore.load_split(config, FLAGS.split, FLAGS.data_dir)
    summary = evaluation.summarize(labels, logits_fn(images), config.model.num_classes)
    summary.update(split=FLAGS.split, model=source)
    path = os.path.join(FLAGS.run_dir, f"evaluation-{FLAGS.split}.json")
    files.write_json(path, summary)
    print(f"{FLAGS.split} split, model {source}")
    print(format_summary(summary))
    print(f"written to {path}")
    return 0


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    return run_guarded(_evaluate)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
