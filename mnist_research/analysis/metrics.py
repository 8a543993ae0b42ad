"""Classification metrics from labels and model outputs (NumPy and SciPy).

Used by training (``metrics.json``), ``evaluate`` and the reports, so all three
compute the confusion matrix and per-class scores the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special


def summarize(labels: np.ndarray, logits: np.ndarray, num_classes: int = 10) -> dict[str, Any]:
    """Accuracy, mean loss, confusion matrix (``[true, predicted]``) and per-class scores.

    A class never predicted has precision 0; a class absent from the labels has
    recall 0 (and F1 0), as scikit-learn reports with ``zero_division=0``.
    """
    labels = np.asarray(labels, np.int64)
    predicted = np.asarray(logits).argmax(axis=1)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    # The cross-entropy of each example: minus the log-probability of its label.
    log_probabilities = special.log_softmax(np.asarray(logits, np.float64), axis=1)
    losses = -log_probabilities[np.arange(len(labels)), labels]
    true_positive, support = np.diag(matrix).astype(np.float64), matrix.sum(axis=1)
    with np.errstate(invalid="ignore"):  # 0 / 0 gives NaN, which nan_to_num makes 0
        precision = np.nan_to_num(true_positive / matrix.sum(axis=0))
        recall = np.nan_to_num(true_positive / support)
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return {
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else float("nan"),
        "loss": float(np.mean(losses)) if len(labels) else float("nan"),
        "examples": int(len(labels)),
        "confusion_matrix": matrix.tolist(),
        "per_class": {
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "f1": f1.tolist(),
            "support": support.tolist(),
        },
    }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities (float32) from logits, computed in float64."""
    return special.softmax(np.asarray(logits, np.float64), axis=1).astype(np.float32)
