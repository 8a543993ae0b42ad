"""A run's per-epoch history and the ``metrics.json`` document built from it.

What makes a ``metrics.json`` document sound is checked where it is read back
(:func:`mnist_research.rundir.records.metrics_problem`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_research.rundir.records import HISTORY_KEYS

if TYPE_CHECKING:  # Annotations only: reading a run's history needs no TensorFlow.
    from mnist_research.training.metric_sums import Totals

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
        metrics.update(
            test_accuracy=test.accuracy, test_loss=test.loss, test_examples=int(test.count)
        )
    return metrics
