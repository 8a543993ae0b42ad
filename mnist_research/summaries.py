"""TensorBoard writers: ``train/`` and ``validation/`` under the run dir.

Both directories use the same tag names (``epoch/loss``, ``epoch/accuracy``) so
TensorBoard overlays training and validation curves. Step-level training
scalars (``step/loss``, ``step/accuracy``) use the optimizer step as x-axis;
epoch-level ones use the epoch number. Only the chief writes summaries; other
workers get a :class:`NullSummaries`.
"""

from __future__ import annotations

import os

import tensorflow as tf


class Summaries:
    """Writes scalars, text and histograms for one run.

    Args:
      run_dir: the run directory; writers go to ``run_dir/train`` and
        ``run_dir/validation``.
    """

    def __init__(self, run_dir: str):
        self.train = tf.summary.create_file_writer(os.path.join(run_dir, "train"))
        self.validation = tf.summary.create_file_writer(os.path.join(run_dir, "validation"))

    def step_scalars(self, step: int, values: dict[str, float]) -> None:
        """Training scalars at an optimizer step (``step/<name>``)."""
        with self.train.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"step/{name}", value)

    def epoch_scalars(self, epoch: int, train: dict[str, float],
                      validation: dict[str, float]) -> None:
        """Per-epoch scalars (``epoch/<name>``) in both writers."""
        for writer, values in ((self.train, train), (self.validation, validation)):
            with writer.as_default(step=epoch):
                for name, value in values.items():
                    tf.summary.scalar(f"epoch/{name}", value)
            writer.flush()

    def text(self, name: str, markdown: str, step: int = 0) -> None:
        with self.train.as_default(step=step):
            tf.summary.text(name, markdown)
        self.train.flush()

    def histograms(self, step: int, variables: list[tf.Variable], prefix: str) -> None:
        """One histogram per variable (call once per epoch, never per step)."""
        with self.train.as_default(step=step):
            for variable in variables:
                tf.summary.histogram(f"{prefix}/{variable.path}", variable)

    def close(self) -> None:
        for writer in (self.train, self.validation):
            writer.flush()
            writer.close()


class NullSummaries:
    """Accepts every call and writes nothing (non-chief workers)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None
