"""TensorBoard writers: ``train/`` and ``validation/`` under the run dir.

Both directories use the same tag names (``epoch/loss``, ``epoch/accuracy``) so
TensorBoard overlays training and validation curves. Step-level training
scalars (``step/loss``, ``step/accuracy``) use the optimizer step as x-axis;
epoch-level ones use the epoch number. Only the chief writes summaries; other
workers get a :class:`NullSummaries`.
"""

from __future__ import annotations

import glob
import os

import tensorflow as tf
from tensorboard.compat.proto import event_pb2


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


def prune_after(run_dir: str, epoch: int, step: int) -> int:
    """Drops events written after the checkpoint a resumed run restarts from.

    A run killed mid-epoch leaves summaries for steps (``step/*`` tags) and
    epochs (``epoch/*`` tags) that the resumed run will write again; without
    pruning, TensorBoard would show those steps twice and the curve would go
    backwards. Each event file that holds such events is rewritten (to a
    temporary file, then renamed) without them.

    Returns:
      The number of events dropped.
    """
    dropped = 0
    for path in glob.glob(os.path.join(run_dir, "*", "events.out.tfevents.*")):
        kept, stale = [], 0
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            tags = [value.tag for value in event.summary.value]
            if any((t.startswith("epoch/") and event.step > epoch) or
                   (t.startswith("step/") and event.step > step) for t in tags):
                stale += 1
            else:
                kept.append(record.numpy())
        if stale:
            temp = path + ".pruning"
            with tf.io.TFRecordWriter(temp) as writer:
                for record in kept:
                    writer.write(record)
            os.replace(temp, path)
            dropped += stale
    return dropped
