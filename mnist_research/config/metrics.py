"""The per-epoch metrics: one declaration each.

A metric is a mean over examples: the training loop adds each batch's
``batch_sum`` to a running sum and divides by the number of examples at the end
of an epoch (training), a pass (validation) or the test evaluation. Everything
else is derived from :data:`METRICS`: the history keys (``accuracy``,
``val_accuracy``), the epoch log line, the TensorBoard scalars
(``epoch/<name>``, ``step/<name>``, ``test/<name>``), the HParams dashboard's
metrics, ``metrics.json`` (``test_<name>``) and its check, and the report's
history table. A new metric is one entry here::

    Metric("top2_accuracy", top2_correct, "top-2 accuracy")

where ``top2_correct(labels, logits, loss)`` returns the batch's count of
examples whose label is among the two highest logits. Runs written before a
metric existed simply lack its keys; only ``required`` ones must be present.

The functions import TensorFlow when they are traced, so reading the names
(flags, ``--help``, the run-dir checks) needs no TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric the loop sums over examples.

    Attributes:
      name: the history key (``val_<name>`` for validation) and the tag.
      batch_sum: ``batch_sum(labels, logits, loss)``: the batch's sum (a float32
        scalar) from one-hot ``labels``, ``logits`` and the per-example
        cross-entropy ``loss``.
      display: how the HParams dashboard and the report name it.
      required: every finished ``metrics.json`` holds it (the metrics the project
        started with); a metric added later may be absent from older runs.
    """

    name: str
    batch_sum: Callable[[Any, Any, Any], Any]
    display: str
    required: bool = False


def _loss_sum(labels, logits, loss):
    import tensorflow as tf

    return tf.reduce_sum(loss)


def _correct(labels, logits, loss):
    import tensorflow as tf

    hits = tf.equal(tf.argmax(logits, axis=-1), tf.argmax(labels, axis=-1))
    return tf.reduce_sum(tf.cast(hits, tf.float32))


METRICS: tuple[Metric, ...] = (
    Metric("loss", _loss_sum, "loss", required=True),
    Metric("accuracy", _correct, "accuracy", required=True),
)
NAMES = tuple(metric.name for metric in METRICS)

# Per-epoch timing, recorded beside the metrics.
TIMING_KEYS = ("epoch_seconds", "examples_per_second")

# Every key of a run's per-epoch history, and those a finished run must hold.
HISTORY_KEYS = NAMES + tuple(f"val_{name}" for name in NAMES) + TIMING_KEYS
REQUIRED_HISTORY_KEYS = (
    tuple(
        key for metric in METRICS if metric.required for key in (metric.name, f"val_{metric.name}")
    )
    + TIMING_KEYS
)
