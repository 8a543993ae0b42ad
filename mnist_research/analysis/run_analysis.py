"""Analyses of a finished run: evaluate a split (its scores as text too), regenerate the reports."""

from __future__ import annotations

import os
from typing import Any

from mnist_research import files
from mnist_research.analysis import figures
from mnist_research.analysis import metrics as metrics_lib
from mnist_research.errors import RunDirError
from mnist_research.inference import finished_run, portable
from mnist_research.rundir import layout, records


def evaluate_split(
    run_dir: str,
    split: str,
    data_dir: str | None = None,
    from_checkpoint: bool = False,
    model_file: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Scores the run's model on ``split``; writes ``RUN_DIR/evaluation-<split>.json``.

    ``model_file``, an exported ``.tflite`` or ``.onnx`` file, is scored with
    its own runtime instead, into ``evaluation-<split>-<its file name>.json``.

    Returns:
      The summary (accuracy, loss, confusion matrix, per-class scores, what
      was loaded) and the path it was written to.
    """
    config = finished_run.load_config(run_dir)
    if model_file:
        logits_fn = portable.load_logits_fn(model_file, config.model.num_classes)
        source, suffix = model_file, f"-{os.path.basename(model_file)}"
    else:
        logits_fn, source = finished_run.load_logits_fn(run_dir, from_checkpoint)
        suffix = ""
    images, labels = finished_run.load_split(config, split, data_dir)
    summary = metrics_lib.summarize(labels, logits_fn(images), config.model.num_classes)
    summary.update(split=split, model=source)
    path = os.path.join(run_dir, f"evaluation-{split}{suffix}.json")
    files.write_json(path, summary)
    return summary, path


def format_summary(summary: dict) -> str:
    """Accuracy, loss, confusion matrix and per-class table as text."""
    lines = [
        f"accuracy {summary['accuracy']:.4f}  loss {summary['loss']:.4f}  "
        f"({summary['examples']} examples)",
        "",
        "confusion matrix (rows: true, columns: predicted)",
    ]
    matrix = summary["confusion_matrix"]
    lines.append("     " + "".join(f"{c:>6}" for c in range(len(matrix))))
    lines += [f"{r:>4} " + "".join(f"{v:>6}" for v in row) for r, row in enumerate(matrix)]
    per_class = summary["per_class"]
    lines += ["", "class  precision  recall      f1  support"]
    lines += [
        f"{c:>5}  {per_class['precision'][c]:>9.4f}  {per_class['recall'][c]:>6.4f}  "
        f"{per_class['f1'][c]:>6.4f}  {per_class['support'][c]:>7}"
        for c in range(len(per_class["f1"]))
    ]
    return "\n".join(lines)


def regenerate_reports(
    run_dir: str, data_dir: str | None = None, from_checkpoint: bool = False
) -> dict[str, str]:
    """Rewrites the run's figures and report.html from its history and test split.

    ``metrics.json`` gains per-class fields it lacks.

    Returns:
      Report name → path.

    Raises:
      RunDirError: the run has not finished.
    """
    config = finished_run.load_config(run_dir)
    metrics = records.finished_metrics(run_dir)
    if metrics is None:
        raise RunDirError(f"{run_dir}: the run has not finished (no final metrics.json)")
    logits_fn, _ = finished_run.load_logits_fn(run_dir, from_checkpoint)
    images, labels = finished_run.load_split(config, "test", data_dir)
    logits = logits_fn(images)
    summary = metrics_lib.summarize(labels, logits, config.model.num_classes)
    if "per_class" not in metrics:
        metrics.update(per_class=summary["per_class"], confusion_matrix=summary["confusion_matrix"])
        files.write_json(os.path.join(run_dir, layout.METRICS_FILE), metrics)
    return figures.write_reports(
        os.path.join(run_dir, "reports"), config.to_dict(), metrics, images, labels, logits, summary
    )
