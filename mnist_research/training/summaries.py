"""TensorBoard writers: ``train/`` and ``validation/`` under the run dir, and the
run dir itself for the HParams session.

Both sub-directories use the same tag names (``epoch/loss``, ``epoch/accuracy``)
so TensorBoard overlays training and validation curves (``hooks.TensorBoard``).
The HParams session (hyperparameters plus ``test/<metric>``) lives in the run
dir's own event file, so runs under one ``--logdir`` line up in the HParams
dashboard.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.histogram import metadata as histogram_metadata

from mnist_research.training import hparams as hparams_lib

_HISTOGRAM_METADATA = histogram_metadata.create_summary_metadata(
    display_name=None, description=None
)
HISTOGRAM_BUCKETS = 30


class Summaries:
    """Writes scalars, text, histograms, images and HParams for one run.

    ``run_dir`` ``None`` (non-chief workers) gives no-op writers: every method
    exists and runs, and nothing is written.
    """

    def __init__(self, run_dir: str | None):
        self.run_dir = run_dir
        self.enabled = run_dir is not None
        if self.enabled:
            self.train = tf.summary.create_file_writer(os.path.join(run_dir, "train"))
            self.validation = tf.summary.create_file_writer(os.path.join(run_dir, "validation"))
            self.session = tf.summary.create_file_writer(run_dir)
        else:
            self.train = self.validation = self.session = tf.summary.create_noop_writer()

    @staticmethod
    def scalars(writer, step: int, values: dict[str, float]) -> None:
        """Scalars ``{tag: value}`` at ``step`` in ``writer`` (e.g. ``summaries.train``)."""
        with writer.as_default(step=step):
            for tag, value in values.items():
                tf.summary.scalar(tag, value)

    def flush(self) -> None:
        for writer in (self.train, self.validation, self.session):
            writer.flush()

    def text(self, name: str, markdown: str, step: int = 0) -> None:
        with self.train.as_default(step=step):
            tf.summary.text(name, markdown)
        self.train.flush()

    def histograms(self, step: int, named_values: Iterable[tuple[str, Any]]) -> None:
        """One histogram per (tag, tensor) pair (call once per epoch, never per step).

        The buckets are counted in NumPy (:func:`histogram_buckets`) and written
        as TensorBoard histogram summaries: ``tf.summary.histogram`` runs a few
        dozen small ops per tensor eagerly (0.5 s of CPU for the baseline
        model's 37), and tracing them into one ``tf.function`` took 10 s.
        """
        if not self.enabled:
            return
        with self.train.as_default(step=step):
            for tag, value in named_values:
                tf.summary.write(
                    tag,
                    tf.constant(histogram_buckets(np.asarray(value))),
                    metadata=_HISTOGRAM_METADATA,
                )
        self.train.flush()

    def png_images(self, step: int, paths: dict[str, str]) -> None:
        """Image summaries (``images/<name>``) from PNG files."""
        with self.train.as_default(step=step):
            for name, path in paths.items():
                image = tf.image.decode_png(tf.io.read_file(path), channels=3)
                tf.summary.image(f"images/{name}", image[tf.newaxis])
        self.train.flush()

    def hparams(self, values: dict[str, Any]) -> None:
        """The HParams experiment definition and this run's session start
        (``values``: :func:`~mnist_research.training.hparams.hparams_of`)."""
        if not self.enabled:
            return
        with self.session.as_default():
            hparams_lib.write(values, trial_id=os.path.basename(os.path.abspath(self.run_dir)))
        self.session.flush()

    def final_scalars(self, step: int, values: dict[str, float]) -> None:
        """End-of-run scalars (``test/<name>``) in the HParams session's event file."""
        self.scalars(self.session, step, {f"test/{name}": v for name, v in values.items()})
        self.session.flush()

    def trace_export(self, name: str, step: int) -> None:
        """Writes the graph traced since ``tf.summary.trace_on`` at ``step`` (Graphs tab)."""
        with self.train.as_default(step=step):
            tf.summary.trace_export(name)  # turns tracing off
        self.train.flush()

    def close(self) -> None:
        for writer in (self.train, self.validation, self.session):
            writer.close()


def model_histograms(model: tf.keras.Model, gradients) -> list[tuple[str, Any]]:
    """(tag, tensor) pairs: weights, BN moving statistics and gradients.

    The tags share the prefix ``histograms/``: TensorBoard's Time Series tab
    groups cards by the tag's first component and sorts the groups by name, so
    ``epoch/`` (accuracy, loss) comes first and every histogram after it.
    """
    named = [(f"histograms/weights/{v.path}", v) for v in model.trainable_variables]
    named += [
        (f"histograms/batch_norm/{v.path}", v)
        for v in model.non_trainable_variables
        if "moving" in v.path
    ]
    named += [(f"histograms/gradients/{v.path}", g) for v, g in gradients if g is not None]
    return named


def histogram_buckets(values: np.ndarray, bucket_count: int = HISTOGRAM_BUCKETS) -> np.ndarray:
    """``[bucket_count, 3]`` float64 rows ``(left edge, right edge, count)``.

    The layout and bucketing of ``tf.summary.histogram``: equal-width buckets
    from the minimum to the maximum, the last one closed; all counts in the
    last bucket when every value is equal; zero counts for no values.
    """
    data = np.asarray(values, np.float64).ravel()
    if data.size == 0:
        return np.zeros((bucket_count, 3))
    low, high = float(data.min()), float(data.max())
    if low == high:
        counts = np.zeros(bucket_count)
        counts[-1] = data.size
        return np.stack([np.full(bucket_count, high), np.full(bucket_count, high), counts], 1)
    width = (high - low) / bucket_count
    index = np.minimum(np.floor((data - low) / width).astype(np.int64), bucket_count - 1)
    counts = np.bincount(index, minlength=bucket_count).astype(np.float64)
    edges = np.linspace(low, high, bucket_count + 1)
    edges[-1] = high
    return np.stack([edges[:-1], edges[1:], counts], 1)
