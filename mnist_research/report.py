"""Regenerate every report of a finished run, without training.

Usage:
  python -m mnist_research.report --run_dir=DIR [--data_dir=DIR] [--from_checkpoint]

Reads ``config.json`` and ``metrics.json`` (the history), classifies the run's
test split with its export (or latest checkpoint), and rewrites
``reports/*.png`` and ``reports/report.html``; ``metrics.json`` gains any
per-class fields it lacks.
"""

from __future__ import annotations

import os

from absl import app, flags

from mnist_research import files
from mnist_research.analysis import figures as reports
from mnist_research.analysis import metrics as evaluation
from mnist_research.errors import RunDirError, run_guarded
from mnist_research.inference import finished_run as restore
from mnist_research.training import run_dir as run_dir_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A finished run directory.", required=True)
flags.DEFINE_string("data_dir", None, "Where the data is (default: the run's own --data_dir).")
flags.DEFINE_boolean("from_checkpoint", False,
                     "Load the latest checkpoint instead of the SavedModel export.")


def regenerate(run_dir: str, data_dir: str | None = None, from_checkpoint: bool = False
               ) -> dict[str, str]:
    """Rewrites the run's reports; returns name → path."""
    config = restore.load_config(run_dir)
    metrics_path = os.path.join(run_dir, run_dir_lib.METRICS_FILE)
    metrics = files.read_json(metrics_path)
    if not metrics or not metrics.get("finished"):
        raise RunDirError(f"{run_dir}: the run has not finished (no final metrics.json)")
    logits_fn, _ = restore.load_logits_fn(run_dir, from_checkpoint)
    images, labels = restore.load_split(config, "test", data_dir)
    logits = logits_fn(images)
    summary = evaluation.summarize(labels, logits, config.model.num_classes)
    if "per_class" not in metrics:
        metrics.update(per_class=summary["per_class"],
                       confusion_matrix=summary["confusion_matrix"])
        files.write_json(metrics_path, metrics)
    return reports.write_reports(os.path.join(run_dir, "reports"), metrics["history"], images,
                                 labels, evaluation.softmax(logits), summary,
                                 config.to_dict(), metrics)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")

    def body() -> int:
        for name, path in regenerate(FLAGS.run_dir, FLAGS.data_dir,
                                     FLAGS.from_checkpoint).items():
            print(f"{name:>17}: {path}")
        return 0

    return run_guarded(body)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
