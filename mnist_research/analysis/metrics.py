"""Classification metrics from labels and model outputs (plain NumPy).

Used by training (``metrics.json``), ``evaluate`` and the reports, so all three
compute the confusion matrix and per-class scores the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(
    labels: np.ndarray, predicted: np.ndarray, num_classes: int = 10
) -> np.ndarray:
    """``[true, predicted]`` counts, int64 ``[num_classes, num_classes]``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


def per_class(matrix: np.ndarray) -> dict[str, list[float]]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    A class never predicted has precision 0; a class absent from the labels has
    recall 0 (and F1 0), as scikit-learn reports with ``zero_division=0``.
    """
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    precision = np.divide(
        true_positive, predicted, out=np.zeros_like(predicted), where=predicted > 0
    )
    recall = np.divide(true_positive, support, out=np.zeros_like(support), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.astype(int).tolist(),
    }


def cross_entropy(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Per-example softmax cross-entropy computed stably from logits."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return log_norm - shifted[np.arange(len(labels)), np.asarray(labels, np.int64)]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def summarize(labels: np.ndarray, logits: np.ndarray, num_classes: int = 10) -> dict[str, Any]:
    """Accuracy, mean loss, confusion matrix and per-class scores of one split."""
    labels = np.asarray(labels, np.int64)
    predicted = np.asarray(logits).argmax(axis=1)
    matrix = confusion_matrix(labels, predicted, num_classes)
    return {
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else float("nan"),
        "loss": float(np.mean(cross_entropy(labels, logits))) if len(labels) else float("nan"),
        "examples": int(len(labels)),
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class(matrix),
    }


def most_confident_mistakes(
    labels: np.ndarray, probabilities: np.ndarray, count: int
) -> np.ndarray:
    """Indices of wrong predictions, most confident first (at most ``count``)."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(labels))
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]


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
