"""The hooks the training loop calls: what happens around the steps and after each epoch.

Each is a :class:`~mnist_research.training.loop.Hook` with one job;
``runner.standard_hooks`` composes them (a caller of
``runner.train_and_evaluate`` may add its own or wrap them).
"""

from __future__ import annotations

import os
import sys

import tensorflow as tf
from absl import logging

from mnist_research import files, logs
from mnist_research.config.registry import METRIC_NAMES as NAMES
from mnist_research.data import pipeline
from mnist_research.rundir import layout
from mnist_research.training import history as history_lib
from mnist_research.training import summaries as summaries_lib
from mnist_research.training.checkpoint_state import BestWeights, CheckpointState
from mnist_research.training.history import Totals
from mnist_research.training.loop import Hook, Trainer, batch_sums


class ProgressBar(Hook):
    """A Keras progress bar of the epoch's running means, erased when the epoch ends.

    Shown only where stdout redraws in place (a terminal, a notebook); written
    to a file or pipe, the run logs one line per epoch and nothing else.
    """

    def __init__(self, steps_per_epoch: int):
        self.steps_per_epoch = steps_per_epoch
        self.enabled = logs.interactive_output()
        self.bar = None

    def before_steps(self, step: int, num_steps: int) -> None:
        if self.enabled and self.bar is None:  # the epoch starts: its time counts from here
            # The running means are shown as given, not averaged again by the bar.
            self.bar = tf.keras.utils.Progbar(
                self.steps_per_epoch, unit_name="step", stateful_metrics=list(NAMES)
            )

    def after_steps(self, step: int, done: int, chunk: Totals, epoch_totals: Totals) -> None:
        if self.bar is None:
            return
        self.bar.update(done, list(epoch_totals.means().items()), finalize=False)
        if done == self.steps_per_epoch:
            sys.stdout.write("\r\x1b[K")  # the epoch line that follows replaces the bar
            sys.stdout.flush()
            self.bar = None


# Images in the fixed batch whose gradients the per-epoch histograms show.
GRADIENT_BATCH = 1024


class TensorBoard(Hook):
    """Scalars every ``summary_every_steps`` steps and every epoch, histograms, the graph.

    Step scalars (``step/<metric>``) use the optimizer step as x-axis; epoch
    scalars (``epoch/<metric>`` in ``train/`` and ``validation/``), the
    learning rate, speed and histograms use the epoch. The first call of a
    fresh run records the graph of the step function (the Graphs tab). The
    gradient histograms are of ``gradient_batch`` (``(images, labels)``; ``None``:
    no histograms).
    """

    def __init__(self, summaries: summaries_lib.Summaries, trainer: Trainer, gradient_batch=None):
        self.summaries = summaries
        self.trainer = trainer
        self.config = trainer.config.train
        self.gradients = None
        if gradient_batch is not None and self.config.histograms:
            self.gradients = gradient_fn(trainer, *gradient_batch)
        self.tracing = False
        self.first_step = 0

    def before_steps(self, step: int, num_steps: int) -> None:
        self.first_step = step
        self.tracing = step == 0 and self.summaries.enabled  # a fresh run's first call
        if self.tracing:
            tf.summary.trace_on(graph=True, profiler=False)

    def after_steps(self, step: int, done: int, chunk: Totals, epoch_totals: Totals) -> None:
        if self.tracing:
            with self.summaries.train.as_default(step=step):
                tf.summary.trace_export("train_steps")  # turns tracing off
            self.summaries.train.flush()
        every = self.config.summary_every_steps
        if step // every != self.first_step // every:
            step_values = {f"step/{name}": value for name, value in chunk.means().items()}
            self.summaries.scalars(self.summaries.train, step, step_values)

    def after_epoch(self, epoch: int, history: history_lib.History) -> None:
        train = {name: history[name][-1] for name in NAMES if name in history}
        train["learning_rate"] = self.trainer.learning_rate
        train["examples_per_second"] = history["examples_per_second"][-1]
        train["seconds"] = history["epoch_seconds"][-1]
        val = {name: history[f"val_{name}"][-1] for name in NAMES if f"val_{name}" in history}
        # One tag in both folders: TensorBoard overlays training and validation.
        for writer, values in ((self.summaries.train, train), (self.summaries.validation, val)):
            self.summaries.scalars(writer, epoch, {f"epoch/{n}": v for n, v in values.items()})
        self.summaries.flush()
        if self.gradients is not None and self.config.histograms_due(epoch):
            self.summaries.histograms(
                epoch, summaries_lib.model_histograms(self.trainer.model, self.gradients())
            )

    def end(self) -> None:
        tf.summary.trace_off()  # if the first call failed (a no-op otherwise)


def gradient_fn(trainer: Trainer, images, labels):
    """A function giving ``(variable, gradient)`` pairs on the batch ``images, labels``.

    For the per-epoch gradient histograms: the loss in inference mode (no
    dropout; BN uses and does not update its moving statistics) on the whole
    batch, in this process: every replica holds the same weights, so the
    batch is neither split across replicas nor its gradient all-reduced.
    """
    model, variables = trainer.model, trainer.model.trainable_variables
    inputs, targets = next(iter(pipeline.eval_dataset(images, labels, len(images))))

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            logits = model(inputs, training=False, return_logits=True)
            loss = tf.reduce_sum(batch_sums(targets, logits)[2]) / float(len(images))
        return tape.gradient(loss, variables)

    return lambda: list(zip(variables, gradients()))


class BestEpoch(Hook):
    """Copies the model's weights whenever validation accuracy improves; stops early once
    it has not improved for ``patience`` epochs (0: never)."""

    def __init__(self, best: BestWeights, patience: int):
        self.best = best
        self.patience = patience

    def after_epoch(self, epoch: int, history: history_lib.History) -> None:
        val_accuracy = history["val_accuracy"]
        if history_lib.best_epoch(val_accuracy) == len(val_accuracy):  # the last is the best
            self.best.capture()

    def should_stop(self, history: history_lib.History) -> bool:
        val_accuracy = history["val_accuracy"]
        if not history_lib.should_stop(val_accuracy, self.patience):
            return False
        best = history_lib.best_epoch(val_accuracy)
        logging.info(
            "Early stopping after epoch %d: validation accuracy has not improved for %d "
            "epochs (best %.4f at epoch %d)",
            len(val_accuracy),
            self.patience,
            val_accuracy[best - 1],
            best,
        )
        return True


class Checkpoint(Hook):
    """Saves ``ckpt-<epoch>`` (weights, optimizer, history): the run's progress; then the
    chief writes ``metrics.json`` (``finished: false`` until the run's end) from it."""

    def __init__(self, state: CheckpointState, run_dir: str, info: dict, chief: bool):
        self.state = state
        self.path = os.path.join(run_dir, layout.METRICS_FILE)
        self.info = info
        self.chief = chief

    def after_epoch(self, epoch: int, history: history_lib.History) -> None:
        self.state.save(epoch, history)
        if self.chief:
            document = history_lib.run_metrics(history, self.info, None, finished=False)
            files.write_json(self.path, document)
