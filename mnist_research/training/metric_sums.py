"""Loss and accuracy bookkeeping for the trainer: per-batch sums, per-replica running sums, totals.

Each replica adds its batch's loss and accuracy sums to its own on-read
variables inside the step; :meth:`ReplicaSums.read` sums them across replicas
once per call, not once per step. :class:`Totals` is what the loop hands back.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf


@dataclasses.dataclass
class Totals:
    """Sums over examples: loss, correct predictions, count."""

    loss_sum: float = 0.0
    correct: float = 0.0
    count: float = 0.0

    def add(self, other: Totals) -> None:
        self.loss_sum += other.loss_sum
        self.correct += other.correct
        self.count += other.count

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count if self.count else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")


def batch_stats(labels, logits):
    """``(loss_sum, correct, count)`` of one batch (float32 scalars)."""
    per_example = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1), tf.argmax(labels, axis=-1)), tf.float32)
    return (
        tf.reduce_sum(per_example),
        tf.reduce_sum(correct),
        tf.cast(tf.shape(labels)[0], tf.float32),
    ), per_example


class ReplicaSums:
    """Running sums of each replica: loss, correct predictions, examples, first bad step.

    On-read variables: inside a replica function each replica updates its own
    copy (no cross-replica traffic per step); :meth:`read` in cross-replica
    context adds the three sums over replicas (and workers) once.
    """

    def __init__(self, name: str):
        def variable(suffix, dtype, aggregation):
            return tf.Variable(
                tf.zeros([], dtype),
                trainable=False,
                name=f"{name}_{suffix}",
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=aggregation,
            )

        self.values = [
            variable(n, tf.float32, tf.VariableAggregation.SUM)
            for n in ("loss_sum", "correct", "count")
        ]
        self.first_bad_step = variable(
            "first_bad_step", tf.int64, tf.VariableAggregation.ONLY_FIRST_REPLICA
        )

    def reset(self) -> None:
        for value in self.values:
            value.assign(0.0)
        self.first_bad_step.assign(-1)

    def add(self, stats, step=None) -> None:
        """Adds one batch's ``(loss_sum, correct, count)``; records ``step`` if its loss is bad."""
        for value, stat in zip(self.values, stats):
            value.assign_add(stat)
        if step is not None:
            bad = tf.logical_and(
                self.first_bad_step < 0, tf.logical_not(tf.math.is_finite(stats[0]))
            )
            self.first_bad_step.assign(tf.where(bad, step, self.first_bad_step))

    def read(self, strategy: tf.distribute.Strategy) -> list[tf.Tensor]:
        """The three sums over all replicas, and the first bad step of any local one (-1: none)."""
        local = [
            tf.where(v < 0, tf.int64.max, v)
            for v in strategy.experimental_local_results(self.first_bad_step)
        ]
        first = tf.reduce_min(tf.stack(local))
        return [v.read_value() for v in self.values] + [
            tf.where(first == tf.int64.max, tf.constant(-1, tf.int64), first)
        ]
