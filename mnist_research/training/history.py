"""A run's per-epoch history, the best epoch it implies, and ``metrics.json`` built from it.

The history holds one list per key of ``config.metrics.HISTORY_KEYS``
(training and validation metrics, then timing), one value per epoch. It is
checkpointed with the weights; ``metrics.json`` is written from it. What makes
a ``metrics.json`` document sound is checked where it is read back
(:func:`mnist_research.rundir.records.metrics_problem`).

The best epoch and early stopping are pure functions of the validation
accuracy in the history, so a resumed run recomputes both from its checkpoint
and decides exactly as an uninterrupted one. "Best" is the highest validation
accuracy; a later epoch must beat it strictly (ties keep the earlier epoch), as
Keras's ``EarlyStopping`` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_research.config.metrics import HISTORY_KEYS, NAMES

if TYPE_CHECKING:  # Annotations only: reading a run's history needs no TensorFlow.
    from mnist_research.training.sums import Totals

History = dict[str, list[float]]

# The folder under ``checkpoints/`` that holds the best epoch's weights at the run's end.
BEST_DIR = "best"


def from_json(text: str) -> History:
    """The history stored in a checkpoint (``"{}"`` for a fresh run).

    A key the stored history lacks while it holds epochs (a metric declared
    after the run started) stays absent: the run records it from no epoch.
    """
    stored = json.loads(text)
    epochs = len(stored.get("loss", []))
    return {key: list(stored.get(key, [])) for key in HISTORY_KEYS if key in stored or not epochs}


def append(history: History, train: Totals, val: Totals, seconds: float) -> None:
    """Adds one epoch: every metric of training and validation, time and throughput."""
    values = {name: train.mean(name) for name in NAMES}
    values.update({f"val_{name}": val.mean(name) for name in NAMES})
    values.update(epoch_seconds=seconds, examples_per_second=train.count / seconds)
    for key, series in history.items():
        series.append(values[key])


def run_metrics(
    history: History, info: dict[str, Any], test: Totals | None, finished: bool
) -> dict[str, Any]:
    """The ``metrics.json`` document: history, totals, device ``info`` and test scores.

    Args:
      history: the per-epoch history so far.
      info: the device description (``devices.device_info``).
      test: test-set totals, ``None`` while training.
      finished: whether the run is complete (export and reports written).
    """
    train_seconds = float(np.sum(history["epoch_seconds"]))
    examples = float(np.sum(np.multiply(history["epoch_seconds"], history["examples_per_second"])))
    metrics = {
        "finished": finished,
        "epochs_completed": len(history["loss"]),
        "history": history,
        "train_seconds": train_seconds,
        "examples_per_second": examples / train_seconds if train_seconds else 0.0,
        **info,
    }
    if test is not None:
        metrics.update({f"test_{name}": value for name, value in test.means().items()})
        metrics["test_examples"] = int(test.count)
    return metrics


def best_epoch(val_accuracy: Sequence[float]) -> int:
    """The 1-based epoch with the highest validation accuracy (the first on ties); 0 if none."""
    if not len(val_accuracy):
        return 0
    return max(range(len(val_accuracy)), key=lambda i: (val_accuracy[i], -i)) + 1


def improved(val_accuracy: Sequence[float]) -> bool:
    """Whether the last epoch is the best so far."""
    return len(val_accuracy) > 0 and best_epoch(val_accuracy) == len(val_accuracy)


def should_stop(val_accuracy: Sequence[float], patience: int) -> bool:
    """Whether ``patience`` epochs (0: never) have passed without a better validation accuracy."""
    return patience > 0 and len(val_accuracy) - best_epoch(val_accuracy) >= patience


def selection(
    val_accuracy: Sequence[float], patience: int, epochs: int, restore_best: bool
) -> dict:
    """What ``metrics.json`` records about which epoch was best and which was exported."""
    best = best_epoch(val_accuracy)
    done = len(val_accuracy)
    return {
        "best_epoch": best,
        "best_val_accuracy": float(val_accuracy[best - 1]) if best else None,
        "stopped_early": done < epochs and should_stop(val_accuracy, patience),
        "early_stopping_patience": patience,
        "exported_epoch": best if restore_best else done,
    }
