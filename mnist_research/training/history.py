"""A run's per-epoch history and the ``metrics.json`` document built from it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

if TYPE_CHECKING:  # Annotations only: reading a run's history needs no TensorFlow.
    from mnist_research.training.sums import Totals

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds",
                "examples_per_second")

History = dict[str, list[float]]


def from_json(text: str) -> History:
    """The history stored in a checkpoint (``"{}"`` for a fresh run)."""
    stored = json.loads(text)
    return {key: list(stored.get(key, [])) for key in HISTORY_KEYS}


def append(history: History, train: Totals, val: Totals, seconds: float) -> None:
    """Adds one epoch: training and validation loss/accuracy, time and throughput."""
    history["loss"].append(train.loss)
    history["accuracy"].append(train.accuracy)
    history["val_loss"].append(val.loss)
    history["val_accuracy"].append(val.accuracy)
    history["epoch_seconds"].append(seconds)
    history["examples_per_second"].append(train.count / seconds)


def run_metrics(history: History, info: dict[str, Any], test: Optional[Totals],
                finished: bool) -> dict[str, Any]:
    """The ``metrics.json`` document: history, totals, device ``info`` and test scores.

    Args:
      history: the per-epoch history so far.
      info: the device description (``devices.device_info``).
      test: test-set totals, ``None`` while training.
      finished: whether the run is complete (export and reports written).
    """
    train_seconds = float(np.sum(history["epoch_seconds"]))
    examples = float(np.sum(np.multiply(history["epoch_seconds"],
                                        history["examples_per_second"])))
    metrics = {
        "finished": finished,
        "epochs_completed": len(history["loss"]),
        "history": history,
        "train_seconds": train_seconds,
        "examples_per_second": examples / train_seconds if train_seconds else 0.0,
        **info,
    }
    if test is not None:
        metrics.update(test_accuracy=test.accuracy, test_loss=test.loss,
                       test_examples=int(test.count))
    return metrics


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metrics_problem(document: Any) -> Optional[str]:
    """What makes a ``metrics.json`` document unusable, or ``None`` when it is sound.

    A finished document must hold ``epochs_completed`` epochs of every history
    key and the test scores; an unfinished one only needs to be an object.
    """
    if not isinstance(document, dict):
        return f"a JSON {type(document).__name__}, expected an object"
    if not isinstance(document.get("finished", False), bool):
        return "'finished' is not true or false"
    if not document.get("finished"):
        return None
    epochs = document.get("epochs_completed")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        return f"epochs_completed is {epochs!r}"
    history = document.get("history")
    if not isinstance(history, dict):
        return "no history"
    for key in HISTORY_KEYS:
        values = history.get(key)
        if not isinstance(values, list) or len(values) != epochs:
            return f"history.{key} does not hold {epochs} values"
        if not all(_is_number(v) for v in values):
            return f"history.{key} holds a value that is not a number"
    for key in ("test_accuracy", "test_loss"):
        if not _is_number(document.get(key)):
            return f"{key} is {document.get(key)!r}"
    return None
