"""The per-epoch metrics: one declaration each, without TensorFlow.

A metric is a mean over examples: the loop adds each batch's sum
(``training.loop.BATCH_SUMS``) to a running sum and divides by the number of
examples at the end of an epoch, a validation pass or the test evaluation. The
history keys, the epoch log line, the progress bar, the TensorBoard scalars,
the HParams metrics, ``metrics.json`` and its check, and the report's history
table are derived from :data:`METRICS`. Runs written before a metric existed
simply lack its keys; only ``required`` ones must be present.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric the loop sums over examples.

    Attributes:
      name: the history key (``val_<name>`` for validation) and the tag; its
        batch sum is ``training.loop.BATCH_SUMS[name]``.
      display: how the HParams dashboard and the report name it.
      required: every finished ``metrics.json`` holds it (the metrics the project
        started with); a metric added later may be absent from older runs.
    """

    name: str
    display: str
    required: bool = False


METRICS: tuple[Metric, ...] = (
    Metric("loss", "loss", required=True),
    Metric("accuracy", "accuracy", required=True),
)
NAMES = tuple(metric.name for metric in METRICS)

# Per-epoch timing, recorded beside the metrics.
TIMING_KEYS = ("epoch_seconds", "examples_per_second")

# Every key of a run's per-epoch history.
HISTORY_KEYS = NAMES + tuple(f"val_{name}" for name in NAMES) + TIMING_KEYS
