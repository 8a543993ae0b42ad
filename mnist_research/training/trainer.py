"""The hand-written training loop: distribution-correct tf.function steps.

One replica step computes the per-example cross-entropy from logits, scales it
by the *global* batch size (``tf.nn.compute_average_loss``; the optimizer sums
gradients across replicas), and applies the optimizer. ``train_steps`` runs
``num_steps`` replica steps inside one ``tf.function`` call with a ``tf.range``
loop, so Python is out of the per-step path. With ``jit_compile`` the replica
step itself is compiled by XLA into one fused program (compiling the whole
loop instead was slower). Each replica adds its loss and accuracy sums to its
own on-read variables inside the step (``metric_sums.ReplicaSums``); they are summed
across replicas once per call, not once per step. Evaluation sums over every
example of a dataset.

Model, optimizer and counters are created inside ``strategy.scope()`` and the
optimizer's slots are built eagerly there: variables created lazily inside
``strategy.run`` fail on 2+ replicas, and an optimizer created outside the
scope lets replicas drift apart silently.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from absl import logging

from mnist_research.config import ExperimentConfig
from mnist_research.data.model_input import logits_function
from mnist_research.errors import ConfigError, NonFiniteLossError
from mnist_research.model import registry
from mnist_research.training import optimizers
from mnist_research.training.metric_sums import ReplicaSums, Totals, batch_stats

_SUM = tf.distribute.ReduceOp.SUM


def jit_plan(config: ExperimentConfig, replicas: int) -> tuple[str, str]:
    """What XLA compiles, ``"step"``, ``"gradients"`` or ``"none"``, and why (for the log).

    One replica: the whole replica step (forward, backward, the optimizer, sums).
    Several replicas: the optimizer all-reduces gradients in a cross-replica
    merge that XLA cannot compile, so only the forward/backward pass is
    compiled and the gradients are applied outside it, unless the model has
    BatchNormalization, which synchronizes batch statistics across replicas
    inside the forward pass: then the plain step runs.
    """
    if not config.train.jit_compile:
        return "none", "jit_compile is off"
    if replicas == 1:
        return "step", "jit_compile: XLA compiles the whole replica train step"
    if config.model.batch_norm:
        return "none", (
            f"jit_compile falls back to the plain step: BatchNormalization "
            f"synchronizes statistics across the {replicas} replicas inside the "
            f"forward pass, which XLA cannot compile"
        )
    return "gradients", (
        f"jit_compile: XLA compiles the forward/backward pass; the gradients "
        f"are all-reduced and applied outside it ({replicas} replicas)"
    )


class Trainer:
    """Owns the model, the optimizer and the compiled train/eval functions.

    Args:
      config: the experiment configuration.
      strategy: where replicas run; variables are created in its scope.
      steps_per_epoch: optimizer steps per epoch, which learning-rate schedules
        need to span the whole run.
    """

    def __init__(
        self, config: ExperimentConfig, strategy: tf.distribute.Strategy, steps_per_epoch: int = 1
    ):
        self.config = config
        self.strategy = strategy
        self.global_batch_size = config.train.batch_size
        replicas = strategy.num_replicas_in_sync
        if self.global_batch_size % replicas:
            raise ConfigError(
                f"batch_size {self.global_batch_size} is not divisible by the {replicas} replicas"
            )
        with strategy.scope():
            self.model = registry.create(config.model, synchronized_bn=replicas > 1)
            optimizer = optimizers.build(config.train, steps_per_epoch)
            if config.distribute.mixed_precision == "mixed_float16":
                optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.model.trainable_variables)
            self.epoch = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="epoch",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            self._train_sums = ReplicaSums("train")
            self._eval_sums = ReplicaSums("eval")
        self.jit_compile, reason = jit_plan(config, replicas)
        if config.train.jit_compile:
            logging.debug(reason)  # an internal: shown with --verbosity=1
        self._gradients = self._compiled(self._forward_backward, "gradients")
        self._step = self._compiled(self._replica_train_step, "step")
        self._train_loop = tf.function(self._train_loop_fn)
        # Takes the distributed dataset as an argument: validation and test
        # batches share one element spec, so one trace serves both.
        self._evaluate = tf.function(self._evaluate_fn)

    def _compiled(self, fn, part: str):
        """``fn`` compiled by XLA if the plan compiles ``part``, else ``fn`` itself.

        Either way AutoGraph leaves ``fn`` alone: it has no Python control flow
        over tensors, and converting it only added to the first call's tracing.
        """
        if self.jit_compile == part:
            return tf.function(fn, jit_compile=True, autograph=False)
        return tf.autograph.experimental.do_not_convert(fn)

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

    def _forward_backward(self, images, labels, dropout_seed):
        """Gradients of the global-batch-scaled loss, and the batch's sums."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(
                images, training=True, return_logits=True, dropout_seed=dropout_seed
            )
            # The logged sums are cross-entropy against the true labels (comparable with
            # validation); the gradient, against the smoothed targets when smoothing is on.
            stats, per_example = batch_stats(labels, logits)
            smoothing = self.config.train.label_smoothing
            if smoothing:
                targets = labels * (1.0 - smoothing) + smoothing / labels.shape[-1]
                per_example = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
            if isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
                loss = self.optimizer.scale_loss(loss)
        return tape.gradient(loss, variables), stats

    def _replica_train_step(self, batch):
        images, labels = batch
        # Dropout masks are a function of (run seed, step); the model folds in
        # the replica and the layer, so a resumed run replays them exactly.
        seed = tf.stack(
            [
                tf.constant(self.config.train.seed, tf.int64),
                tf.cast(self.optimizer.iterations, tf.int64),
            ]
        )
        grads, stats = self._gradients(images, labels, seed)
        optimizers.apply_gradients(
            self.optimizer,
            grads,
            self.model.trainable_variables,
            self.config.train.clip_global_norm,
        )
        self._train_sums.add(stats, step=self.optimizer.iterations)

    # ------------------------------------------------------------------ compiled loops

    def _train_loop_fn(self, iterator, num_steps):
        self._train_sums.reset()
        for _ in tf.range(num_steps):
            self.strategy.run(self._step, args=(next(iterator),))
        return self._train_sums.read(self.strategy)

    def train_steps(self, iterator, num_steps: int) -> Totals:
        """Runs ``num_steps`` training steps in one tf.function call.

        Raises:
          NonFiniteLossError: naming the first step whose loss was NaN or Inf.
        """
        loss_sum, correct, count, bad_step = self._train_loop(
            iterator, tf.constant(num_steps, dtype=tf.int32)
        )
        bad_step = int(bad_step)
        if bad_step >= 0 or not math.isfinite(float(loss_sum)):
            raise NonFiniteLossError(
                f"loss became NaN or Inf at step {bad_step if bad_step >= 0 else self.step}; "
                f"lower --learning_rate or check the data"
            )
        return Totals(float(loss_sum), float(correct), float(count))

    def _replica_eval(self, batch):
        images, labels = batch
        logits = self.model(images, training=False, return_logits=True)
        self._eval_sums.add(batch_stats(labels, logits)[0])

    def _evaluate_fn(self, dist_dataset):
        self._eval_sums.reset()
        # Not XLA-compiled: XLA compiles one program per batch shape (a dataset
        # may end with a partial batch), and on a 2-core CPU those compilations
        # cost more than they saved over 15 validation passes (measured with
        # 128-image batches: 1 s more CPU on the first call, no faster a pass).
        replica_eval = tf.autograph.experimental.do_not_convert(self._replica_eval)
        # An explicit iterator and while loop. Under the default strategy the
        # dataset is a plain tf.data.Dataset, and AutoGraph turns ``for batch in
        # dataset`` into a dataset reduce, which ran the forward pass inside
        # tf.data's function runtime, 2.5x slower (a 12,000-image pass: 0.16 s
        # against 0.066 s). Distributed datasets already ran this loop.
        batches = iter(dist_dataset)
        batch = batches.get_next_as_optional()
        while batch.has_value():
            self.strategy.run(replica_eval, args=(batch.get_value(),))
            batch = batches.get_next_as_optional()
        return self._eval_sums.read(self.strategy)[:3]

    def make_evaluator(self, dataset: tf.data.Dataset):
        """Returns a no-argument function that evaluates over all of ``dataset``.

        The dataset is distributed once and its preprocessed batches are
        cached on the first pass (every later pass reads the same batches);
        the returned function sums loss and correct predictions over every
        example (partial batches included) in one ``tf.function`` call.
        Evaluators of datasets with the same element spec share that
        function's trace; the trace depends on whether the dataset is empty
        or infinite, so those are refused.

        Raises:
          ValueError: ``dataset`` is known to be empty or infinite.
        """
        cardinality = int(dataset.cardinality())
        if cardinality in (0, tf.data.INFINITE_CARDINALITY):
            raise ValueError(
                f"cannot evaluate an {'empty' if cardinality == 0 else 'infinite'} dataset"
            )
        dist_dataset = self.strategy.experimental_distribute_dataset(dataset.cache())

        def evaluate() -> Totals:
            return Totals(*(float(v) for v in self._evaluate(dist_dataset)))

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
                per_example = batch_stats(labels, logits)[1]
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
