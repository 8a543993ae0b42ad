"""TensorBoard writers: ``train/`` and ``validation/`` under the run dir, and the
run dir itself for the HParams session.

Both sub-directories use the same tag names (``epoch/loss``, ``epoch/accuracy``)
so TensorBoard overlays training and validation curves. Step-level training
scalars (``step/loss``, ``step/accuracy``) use the optimizer step as x-axis;
epoch-level ones, histograms and images use the epoch number. The HParams
session (hyperparameters plus ``test/accuracy`` and ``test/loss``) lives in the
run dir's own event file, so runs under one ``--logdir`` line up in the HParams
dashboard. Only the chief writes summaries; other workers get a
:class:`NullSummaries`.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Iterable, Optional

import tensorflow as tf
from absl import logging
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import api as hp

from mnist_research.config import ExperimentConfig

# Metrics the HParams dashboard shows for each run: (tag, run sub-directory or None).
HPARAM_METRICS = (("test/accuracy", None), ("test/loss", None),
                  ("epoch/accuracy", "validation"), ("epoch/loss", "validation"),
                  ("epoch/accuracy", "train"), ("epoch/examples_per_second", "train"))


class Summaries:
    """Writes scalars, text, histograms, images and HParams for one run.

    Args:
      run_dir: the run directory; writers go to ``run_dir/train``,
        ``run_dir/validation`` and ``run_dir`` itself (the HParams session).
        ``None`` (non-chief workers) gives no-op writers: every method exists
        and runs, and nothing is written.
    """

    def __init__(self, run_dir: Optional[str]):
        self.run_dir = run_dir
        self.enabled = run_dir is not None
        if self.enabled:
            self.train = tf.summary.create_file_writer(os.path.join(run_dir, "train"))
            self.validation = tf.summary.create_file_writer(os.path.join(run_dir, "validation"))
            self.session = tf.summary.create_file_writer(run_dir)
        else:
            self.train = self.validation = self.session = tf.summary.create_noop_writer()

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

    def histograms(self, step: int, named_values: Iterable[tuple[str, Any]]) -> None:
        """One histogram per (tag, tensor) pair (call once per epoch, never per step)."""
        with self.train.as_default(step=step):
            for tag, value in named_values:
                tf.summary.histogram(tag, value)
        self.train.flush()

    def png_images(self, step: int, paths: dict[str, str]) -> None:
        """Image summaries (``images/<name>``) from PNG files."""
        if not self.enabled:
            return
        with self.train.as_default(step=step):
            for name, path in paths.items():
                image = tf.image.decode_png(tf.io.read_file(path), channels=3)
                tf.summary.image(f"images/{name}", image[tf.newaxis])
        self.train.flush()

    def hparams(self, values: dict[str, Any]) -> None:
        """The HParams experiment definition and this run's session start."""
        if not self.enabled:
            return
        with self.session.as_default():
            hp.hparams_config(
                hparams=[hp.HParam(name) for name in sorted(values)],
                metrics=[hp.Metric(tag, group=group,
                                   display_name=f"{group or 'test'} {tag.split('/')[-1]}")
                         for tag, group in HPARAM_METRICS])
            hp.hparams(values, trial_id=os.path.basename(os.path.abspath(self.run_dir)))
        self.session.flush()

    def final_scalars(self, step: int, values: dict[str, float]) -> None:
        """End-of-run scalars (``test/<name>``) in the HParams session's event file."""
        with self.session.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"test/{name}", value)
        self.session.flush()

    def trace_on(self) -> None:
        """Starts recording the graph of the next tf.function call."""
        if not self.enabled:
            return
        tf.summary.trace_on(graph=True, profiler=False)

    def trace_export(self, name: str, step: int) -> None:
        """Writes the graph recorded since :meth:`trace_on`."""
        if not self.enabled:
            return
        with self.train.as_default(step=step):
            tf.summary.trace_export(name)
        self.train.flush()

    def close(self) -> None:
        for writer in (self.train, self.validation, self.session):
            writer.flush()
            writer.close()


def prune_after(run_dir: str, epoch: int, step: int) -> int:
    """Drops events written after the checkpoint a resumed run restarts from.

    A run killed mid-epoch leaves summaries for steps (``step/*`` tags, keyed
    by optimizer step) and epochs (every other tag: scalars, histograms, images,
    keyed by epoch) that the resumed run will write again; without
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
            if any(event.step > (step if t.startswith("step/") else epoch) for t in tags):
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


def hparams_of(config: ExperimentConfig, info: dict) -> dict[str, Any]:
    """The hyperparameters an HParams dashboard compares across runs."""
    return {
        "experiment": config.experiment,
        "dataset": config.data.dataset,
        "model": config.model.family,
        "conv_filters": ",".join(str(f) for f in config.model.conv_filters),
        "conv_dropout_rates": ",".join(f"{r:g}" for r in config.model.conv_dropout_rates),
        "hidden_units": ",".join(str(u) for u in config.model.hidden_units),
        "dropout_rates": ",".join(f"{r:g}" for r in config.model.dropout_rates),
        "batch_norm": config.model.batch_norm,
        "learning_rate": config.train.learning_rate,
        "lr_schedule": config.train.lr_schedule,
        "batch_size": config.train.batch_size,
        "epochs": config.train.epochs,
        "seed": config.train.seed,
        "augment": config.train.augment,
        "early_stopping_patience": config.train.early_stopping_patience,
        "restore_best": config.train.restore_best,
        "strategy": info["strategy"],
        "device": info["device_name"],
        "device_kind": info["device_kind"],
        "num_replicas": info["num_replicas"],
        "tensorflow_version": info["tensorflow_version"],
        "mixed_precision": config.distribute.mixed_precision,
    }


def model_histograms(model: tf.keras.Model, gradients) -> list[tuple[str, Any]]:
    """(tag, tensor) pairs: weights, BN moving statistics and gradients."""
    named = [(f"weights/{v.path}", v) for v in model.trainable_variables]
    named += [(f"batch_norm/{v.path}", v) for v in model.non_trainable_variables
              if "moving" in v.path]
    named += [(f"gradients/{v.path}", g) for v, g in gradients if g is not None]
    return named


class Profiler:
    """Starts and stops the TF profiler around ``profile_steps`` (chief only).

    The profile lands in ``logdir/plugins/profile`` (TensorBoard's Profile tab).
    """

    def __init__(self, steps: tuple[int, ...], logdir: str, chief: bool):
        self.start_step, self.stop_step = steps if steps else (0, -1)
        self.logdir = logdir
        self.enabled = bool(steps) and chief
        self.running = False

    def before(self, step: int, num_steps: int) -> None:
        if self.enabled and not self.running and step < self.start_step <= step + num_steps:
            tf.profiler.experimental.start(self.logdir)
            self.running = True
            logging.info("Profiler on at step %d", step)

    def after(self, step: int) -> None:
        if self.running and step >= self.stop_step:
            self.stop()
            self.enabled = False

    def stop(self) -> None:
        if self.running:
            tf.profiler.experimental.stop()
            self.running = False
            logging.info("Profile written under %s/plugins/profile", self.logdir)
