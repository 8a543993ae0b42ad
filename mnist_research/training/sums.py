"""The sums behind the metrics: a batch's, a replica's running ones, an epoch's.

The loop adds each batch's sum of every metric (``loop.BATCH_SUMS``) to
:class:`ReplicaSums` on the replica, reads them once per call of many steps,
and adds the results up in :class:`Totals`; a metric's value is its sum over
the number of examples.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from mnist_research.config.metrics import NAMES


@dataclasses.dataclass
class Totals:
    """Sums over examples, one per metric of ``config.metrics.METRICS``, and the example count."""

    sums: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(NAMES, 0.0))
    count: float = 0.0

    def add(self, other: Totals) -> None:
        for name in NAMES:
            self.sums[name] += other.sums[name]
        self.count += other.count

    def mean(self, name: str) -> float:
        return self.sums[name] / self.count if self.count else float("nan")

    def means(self) -> dict[str, float]:
        """Every metric's mean over the examples summed so far."""
        return {name: self.mean(name) for name in NAMES}

    @property
    def loss(self) -> float:
        return self.mean("loss")

    @property
    def accuracy(self) -> float:
        return self.mean("accuracy")

    def line(self, val: Totals) -> str:
        """``loss 0.1234  accuracy 0.9600  val_loss ...``: these means, then ``val``'s."""
        pairs = [*self.means().items(), *((f"val_{n}", v) for n, v in val.means().items())]
        return "  ".join(f"{name} {value:.4f}" for name, value in pairs)


def totals(sums, count) -> Totals:
    """:class:`Totals` from the tensors :meth:`ReplicaSums.read` returns."""
    return Totals({n: float(s) for n, s in zip(NAMES, sums)}, float(count))


class ReplicaSums:
    """Running sums of each replica: every metric, the examples, the first non-finite loss.

    On-read variables: inside a replica function each replica updates its own
    copy (no cross-replica traffic per step); :meth:`read` adds them over
    replicas (and workers) once, in cross-replica context.
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

        self.sums = [variable(n, tf.float32, tf.VariableAggregation.SUM) for n in NAMES]
        self.count = variable("count", tf.float32, tf.VariableAggregation.SUM)
        self.first_bad_step = variable(
            "first_bad_step", tf.int64, tf.VariableAggregation.ONLY_FIRST_REPLICA
        )

    def reset(self) -> None:
        for value in [*self.sums, self.count]:
            value.assign(0.0)
        self.first_bad_step.assign(-1)

    def add(self, sums, count, step=None) -> None:
        """Adds one batch; records ``step`` if its loss (the first metric) is not finite."""
        for value, batch_sum in zip(self.sums, sums):
            value.assign_add(batch_sum)
        self.count.assign_add(count)
        if step is not None:
            bad = tf.logical_and(
                self.first_bad_step < 0, tf.logical_not(tf.math.is_finite(sums[0]))
            )
            self.first_bad_step.assign(tf.where(bad, step, self.first_bad_step))

    def read(self, strategy: tf.distribute.Strategy):
        """The sums and count over all replicas, and this worker's first bad step (-1: none)."""
        local = [
            tf.where(v < 0, tf.int64.max, v)
            for v in strategy.experimental_local_results(self.first_bad_step)
        ]
        first = tf.reduce_min(tf.stack(local))
        first = tf.where(first == tf.int64.max, tf.constant(-1, tf.int64), first)
        return [v.read_value() for v in self.sums], self.count.read_value(), first
