"""A run's numbers: the sums behind its metrics, its per-epoch history, the best epoch,
and ``metrics.json`` built from them.

The history holds one list per key of ``config.registry.HISTORY_KEYS``, one
value per epoch; it is checkpointed with the weights, and ``metrics.json`` is
written from it (read back and checked by ``rundir.records.metrics_problem``).

The best epoch and early stopping are pure functions of the validation
accuracy in the history, so a resumed run recomputes both from its checkpoint
and decides exactly as an uninterrupted one. "Best" is the highest validation
accuracy; a later epoch must beat it strictly (ties keep the earlier epoch), as
Keras's ``EarlyStopping`` does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from mnist_research.config.registry import HISTORY_KEYS
from mnist_research.config.registry import METRIC_NAMES as NAMES


@dataclasses.dataclass
class Totals:
    """Sums over examples, one per metric of ``config.registry.METRICS``, and the example count."""

    sums: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(NAMES, 0.0))
    count: float = 0.0

    @classmethod
    def from_vector(cls, sums: tf.Tensor) -> Totals:
        """From the vector :meth:`ReplicaSums.read` returns: every metric's sum, then the count."""
        values = sums.numpy().tolist()
        return cls(dict(zip(NAMES, values)), values[-1])

    def add(self, other: Totals) -> None:
        for name in NAMES:
            self.sums[name] += other.sums[name]
        self.count += other.count

    def means(self) -> dict[str, float]:
        """Every metric's mean over the examples summed so far."""
        if not self.count:
            return dict.fromkeys(NAMES, float("nan"))
        return {name: value / self.count for name, value in self.sums.items()}

    def line(self, val: Totals) -> str:
        """``loss 0.1234  accuracy 0.9600  val_loss ...``: these means, then ``val``'s."""
        pairs = [*self.means().items(), *((f"val_{n}", v) for n, v in val.means().items())]
        return "  ".join(f"{name} {value:.4f}" for name, value in pairs)


class ReplicaSums:
    """Each replica's running sums (every metric, then the examples) and first non-finite loss.

    On-read variables: inside a replica function each replica updates its own
    copy (no cross-replica traffic per step); :meth:`read` adds them over
    replicas (and workers) once, in cross-replica context.
    """

    def __init__(self, name: str):
        def variable(value, suffix, aggregation):
            return tf.Variable(
                value,
                trainable=False,
                name=f"{name}_{suffix}",
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=aggregation,
            )

        self.sums = variable(tf.zeros([len(NAMES) + 1]), "sums", tf.VariableAggregation.SUM)
        self.first_bad_step = variable(
            tf.constant(-1, tf.int64), "first_bad_step", tf.VariableAggregation.ONLY_FIRST_REPLICA
        )

    def reset(self) -> None:
        self.sums.assign(tf.zeros_like(self.sums))
        self.first_bad_step.assign(-1)

    def add(self, sums, count, step=None) -> None:
        """Adds one batch; records ``step`` if its loss (the first metric) is not finite."""
        self.sums.assign_add(tf.stack([*sums, count]))
        if step is not None:
            bad = (self.first_bad_step < 0) & ~tf.math.is_finite(sums[0])
            self.first_bad_step.assign(tf.where(bad, step, self.first_bad_step))

    def read(self, strategy: tf.distribute.Strategy):
        """The sums over all replicas, and this worker's first bad step (-1: none)."""
        local = strategy.experimental_local_results(self.first_bad_step)
        first = tf.reduce_min([tf.where(v < 0, tf.int64.max, v) for v in local])
        first = tf.where(first == tf.int64.max, tf.constant(-1, tf.int64), first)
        return self.sums.read_value(), first


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
    values = train.means()
    values.update({f"val_{name}": value for name, value in val.means().items()})
    values.update(epoch_seconds=seconds, examples_per_second=train.count / seconds)
    for key, series in history.items():
        series.append(values[key])


def run_metrics(
    history: History, info: dict[str, Any], test: Totals | None, finished: bool
) -> dict[str, Any]:
    """The ``metrics.json`` document: history, totals, device ``info`` and the ``test``
    scores (``None`` while training); ``finished`` once export and reports are written."""
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
