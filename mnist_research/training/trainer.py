"""The hand-written training loop: distribution-correct tf.function steps.

One replica step computes the per-example cross-entropy from logits, scales it
by the *global* batch size (``tf.nn.compute_average_loss``; the optimizer sums
gradients across replicas), and applies Adam. ``train_loop`` runs
``num_steps`` replica steps inside one ``tf.function`` call with a ``tf.range``
loop, so Python is out of the per-step path; it returns loss and accuracy sums
reduced across replicas. Evaluation sums over every example of a dataset.

Model, optimizer and counters are created inside ``strategy.scope()`` and the
optimizer's slots are built eagerly there: variables created lazily inside
``strategy.run`` fail on 2+ replicas, and an optimizer created outside the
scope lets replicas drift apart silently.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from mnist_research.config import ExperimentConfig
from mnist_research.data.model_input import logits_function
from mnist_research.errors import ConfigError, NonFiniteLossError
from mnist_research.model import registry
from mnist_research.training.optimizers import FusedAdam, learning_rate

_SUM = tf.distribute.ReduceOp.SUM


@dataclasses.dataclass
class Totals:
    """Sums over examples: loss, correct predictions, count."""

    loss_sum: float = 0.0
    correct: float = 0.0
    count: float = 0.0

    def add(self, other: "Totals") -> None:
        self.loss_sum += other.loss_sum
        self.correct += other.correct
        self.count += other.count

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count if self.count else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")


def _example_stats(labels, logits):
    per_example = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1), tf.argmax(labels, axis=-1)),
                      tf.float32)
    return per_example, correct


class Trainer:
    """Owns the model, the optimizer and the compiled train/eval functions.

    Args:
      config: the experiment configuration.
      strategy: where replicas run; variables are created in its scope.
      steps_per_epoch: optimizer steps per epoch, which learning-rate schedules
        need to span the whole run.
    """

    def __init__(self, config: ExperimentConfig, strategy: tf.distribute.Strategy,
                 steps_per_epoch: int = 1):
        self.config = config
        self.strategy = strategy
        self.global_batch_size = config.train.batch_size
        replicas = strategy.num_replicas_in_sync
        if self.global_batch_size % replicas:
            raise ConfigError(f"batch_size {self.global_batch_size} is not divisible by the "
                             f"{replicas} replicas")
        with strategy.scope():
            self.model = registry.create(config.model, synchronized_bn=replicas > 1)
            adam = FusedAdam if config.train.fused_adam else tf.keras.optimizers.Adam
            optimizer = adam(learning_rate(config.train, steps_per_epoch))
            if config.distribute.mixed_precision == "mixed_float16":
                optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.model.trainable_variables)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch",
                                     aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self._train_loop = tf.function(self._train_loop_fn)

    @property
    def learning_rate(self) -> float:
        """The learning rate the next step will use."""
        value = self.optimizer.learning_rate
        return float(value.numpy() if hasattr(value, "numpy") else value)

    @property
    def step(self) -> int:
        """Optimizer steps taken so far (the TensorBoard x-axis)."""
        return int(self.optimizer.iterations.numpy())

    # ------------------------------------------------------------------ replica functions

    def _replica_train_step(self, batch):
        images, labels = batch
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True, return_logits=True)
            per_example, correct = _example_stats(labels, logits)
            loss = tf.nn.compute_average_loss(per_example,
                                              global_batch_size=self.global_batch_size)
            if isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
                loss = self.optimizer.scale_loss(loss)
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return (tf.reduce_sum(per_example), tf.reduce_sum(correct),
                tf.cast(tf.shape(labels)[0], tf.float32))

    def _replica_eval_step(self, batch):
        images, labels = batch
        logits = self.model(images, training=False, return_logits=True)
        per_example, correct = _example_stats(labels, logits)
        return (tf.reduce_sum(per_example), tf.reduce_sum(correct),
                tf.cast(tf.shape(labels)[0], tf.float32))

    def _reduce(self, per_replica):
        return [self.strategy.reduce(_SUM, value, axis=None) for value in per_replica]

    # ------------------------------------------------------------------ compiled loops

    def _train_loop_fn(self, iterator, num_steps):
        loss_sum = tf.constant(0.0)
        correct = tf.constant(0.0)
        count = tf.constant(0.0)
        first_bad_step = tf.constant(-1, dtype=tf.int64)
        for _ in tf.range(num_steps):
            step_loss, step_correct, step_count = self._reduce(
                self.strategy.run(self._replica_train_step, args=(next(iterator),)))
            bad = tf.logical_and(first_bad_step < 0, tf.logical_not(tf.math.is_finite(step_loss)))
            first_bad_step = tf.where(bad, self.optimizer.iterations, first_bad_step)
            loss_sum += step_loss
            correct += step_correct
            count += step_count
        return loss_sum, correct, count, first_bad_step

    def train_steps(self, iterator, num_steps: int) -> Totals:
        """Runs ``num_steps`` training steps in one tf.function call.

        Raises:
          NonFiniteLossError: naming the first step whose loss was NaN or Inf.
        """
        loss_sum, correct, count, bad_step = self._train_loop(
            iterator, tf.constant(num_steps, dtype=tf.int32))
        bad_step = int(bad_step)
        if bad_step >= 0 or not math.isfinite(float(loss_sum)):
            raise NonFiniteLossError(
                f"loss became NaN or Inf at step {bad_step if bad_step >= 0 else self.step}; "
                f"lower --learning_rate or check the data")
        return Totals(float(loss_sum), float(correct), float(count))

    def make_evaluator(self, dataset: tf.data.Dataset):
        """Returns a no-argument function that evaluates over all of ``dataset``.

        The dataset is distributed once; the returned function sums loss and
        correct predictions over every example (partial batches included).
        """
        dist_dataset = self.strategy.experimental_distribute_dataset(dataset)

        @tf.function
        def evaluate_fn():
            loss_sum = tf.constant(0.0)
            correct = tf.constant(0.0)
            count = tf.constant(0.0)
            for batch in dist_dataset:
                step_loss, step_correct, step_count = self._reduce(
                    self.strategy.run(self._replica_eval_step, args=(batch,)))
                loss_sum += step_loss
                correct += step_correct
                count += step_count
            return loss_sum, correct, count

        def evaluate() -> Totals:
            return Totals(*(float(v) for v in evaluate_fn()))

        return evaluate

    def make_gradient_fn(self, dataset: tf.data.Dataset):
        """Returns a function giving ``(variable, gradient)`` pairs on one fixed batch.

        For gradient histograms once per epoch: the loss of the first batch of
        ``dataset`` in inference mode (no dropout, and BN uses - and does not
        update - its moving statistics), summed across replicas. Every worker
        must call it (it all-reduces).
        """
        batch = next(iter(self.strategy.experimental_distribute_dataset(dataset.take(1))))
        count = float(next(iter(dataset))[1].shape[0])
        variables = self.model.trainable_variables

        def replica_grads(inputs):
            images, labels = inputs
            with tf.GradientTape() as tape:
                logits = self.model(images, training=False, return_logits=True)
                per_example, _ = _example_stats(labels, logits)
                loss = tf.reduce_sum(per_example) / count
            return tape.gradient(loss, variables)

        @tf.function
        def gradients_fn(inputs):
            per_replica = self.strategy.run(replica_grads, args=(inputs,))
            return [self.strategy.reduce(_SUM, g, axis=None) for g in per_replica]

        return lambda: list(zip(variables, gradients_fn(batch)))

    def predict_logits(self, images: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Logits ``[N, 10]`` for uint8 images ``[N, 28, 28]`` (inference mode)."""
        return logits_function(self.model, batch_size)(images)
