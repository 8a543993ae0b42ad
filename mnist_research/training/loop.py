"""The training loop, top to bottom: the replica step, many steps per call, evaluation, epochs.

1. :class:`Trainer` creates the model, the optimizer and the running sums
   inside ``strategy.scope()`` (variables created lazily inside
   ``strategy.run`` fail on 2+ replicas; an optimizer created outside the scope
   lets replicas drift apart silently) and builds the optimizer's slots there.
2. :meth:`Trainer._replica_step` is one optimizer step on one replica:
   forward pass, per-example cross-entropy, the loss scaled by the *global*
   batch size (the optimizer sums gradients across replicas), gradients,
   the optimizer's update (``--optimizer``; ``--clip_global_norm`` clips the
   gradient summed over replicas). It adds the batch's metric sums (``config.metrics.METRICS``)
   to the replica's own running sums.
3. :meth:`Trainer.train_steps` runs ``num_steps`` replica steps in one
   ``tf.function`` call (a ``tf.range`` loop), so Python is out of the per-step
   path, and sums the replicas' totals once per call.
4. :meth:`Trainer.make_evaluator` sums the metrics over every example of a
   dataset (the last partial batch included).
5. :func:`run_epochs` is the outer loop: train an epoch, validate, record
   the history, and call the hooks (``training.hooks``: profiler,
   TensorBoard, progress bar, best epoch and early stopping, checkpoints).

The sums behind the metrics (:class:`Totals`, :class:`ReplicaSums`) close the module.

The speed options sit around the plain step and change none of its math:
``jit_compile`` compiles the step with XLA (:func:`jit_plan` says what is
compiled on how many replicas), and ``fused_adam`` swaps Adam's update for one
fused kernel per variable (``training.optimizers``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from mnist_research import interrupts
from mnist_research.config import ExperimentConfig
from mnist_research.config.metrics import METRICS, NAMES
from mnist_research.data import pipeline
from mnist_research.data.model_input import logits_function
from mnist_research.errors import ConfigError, NonFiniteLossError
from mnist_research.model import registry
from mnist_research.training import history as history_lib
from mnist_research.training import optimizers

# ---------------------------------------------------------------------------- the inner loop


class Trainer:
    """Owns the model, the optimizer and the compiled train and evaluation functions.

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
            self.optimizer = optimizers.build(config.train, steps_per_epoch)
            if config.distribute.mixed_precision == "mixed_float16":
                self.optimizer = tf.keras.mixed_precision.LossScaleOptimizer(self.optimizer)
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
        self._step = self._compiled(self._replica_step, "step")
        self._train_loop = tf.function(self._train_loop_fn)
        # Takes the distributed dataset as an argument: validation and test
        # batches share one element spec, so one trace serves both.
        self._evaluate = tf.function(self._evaluate_fn)

    @property
    def step(self) -> int:
        """Optimizer steps taken so far (the TensorBoard x-axis)."""
        return int(self.optimizer.iterations.numpy())

    @property
    def learning_rate(self) -> float:
        """The learning rate the next step will use."""
        value = self.optimizer.learning_rate
        return float(value.numpy() if hasattr(value, "numpy") else value)

    # -- one step on one replica

    def _forward_backward(self, images, labels, dropout_seed):
        """Gradients of the global-batch-scaled loss, and the batch's metric sums."""
        with tf.GradientTape() as tape:
            logits = self.model(
                images, training=True, return_logits=True, dropout_seed=dropout_seed
            )
            # The metrics are against the true labels (comparable with validation);
            # the gradient, against the smoothed targets when smoothing is on.
            sums, count, per_example = batch_sums(labels, logits)
            smoothing = self.config.train.label_smoothing
            if smoothing:
                targets = labels * (1.0 - smoothing) + smoothing / labels.shape[-1]
                per_example = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
            if isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
                loss = self.optimizer.scale_loss(loss)
        return tape.gradient(loss, self.model.trainable_variables), sums, count

    def _replica_step(self, batch):
        images, labels = batch
        # Dropout masks are a function of (run seed, step); the model folds in
        # the replica and the layer, so a resumed run replays them exactly.
        seed = tf.stack(
            [
                tf.constant(self.config.train.seed, tf.int64),
                tf.cast(self.optimizer.iterations, tf.int64),
            ]
        )
        # _forward_backward, compiled by XLA when the plan compiles only the gradients.
        grads, sums, count = self._gradients(images, labels, seed)
        optimizers.apply_gradients(
            self.optimizer,
            grads,
            self.model.trainable_variables,
            self.config.train.clip_global_norm,
        )
        self._train_sums.add(sums, count, step=self.optimizer.iterations)

    # -- many steps per call

    def _train_loop_fn(self, iterator, num_steps):
        self._train_sums.reset()
        for _ in tf.range(num_steps):
            # _replica_step on every replica (compiled by XLA when the plan compiles the step).
            self.strategy.run(self._step, args=(next(iterator),))
        return self._train_sums.read(self.strategy)

    def train_steps(self, iterator, num_steps: int) -> Totals:
        """Runs ``num_steps`` training steps in one tf.function call.

        Raises:
          NonFiniteLossError: naming the first step whose loss was NaN or Inf.
        """
        sums, count, bad_step = self._train_loop(iterator, tf.constant(num_steps, tf.int32))
        totals = _totals(sums, count)
        bad_step = int(bad_step)
        if bad_step >= 0 or not math.isfinite(totals.sums["loss"]):
            raise NonFiniteLossError(
                f"loss became NaN or Inf at step {bad_step if bad_step >= 0 else self.step}; "
                f"lower --learning_rate or check the data"
            )
        return totals

    # -- evaluation

    def _replica_eval(self, batch):
        images, labels = batch
        logits = self.model(images, training=False, return_logits=True)
        sums, count, _ = batch_sums(labels, logits)
        self._eval_sums.add(sums, count)

    def _evaluate_fn(self, dist_dataset):
        self._eval_sums.reset()
        # Not XLA-compiled: XLA compiles one program per batch shape (a dataset
        # may end with a partial batch), and on a 2-core CPU those compilations
        # cost more than they saved over 15 validation passes.
        replica_eval = tf.autograph.experimental.do_not_convert(self._replica_eval)
        # An explicit iterator and while loop: under the default strategy
        # AutoGraph would turn ``for batch in dataset`` into a dataset reduce,
        # which ran the forward pass inside tf.data's function runtime, 2.5x
        # slower (a 12,000-image pass: 0.16 s against 0.066 s).
        batches = iter(dist_dataset)
        batch = batches.get_next_as_optional()
        while batch.has_value():
            self.strategy.run(replica_eval, args=(batch.get_value(),))
            batch = batches.get_next_as_optional()
        return self._eval_sums.read(self.strategy)[:2]

    def make_evaluator(self, dataset: tf.data.Dataset) -> Callable[[], Totals]:
        """A no-argument function that sums the metrics over all of ``dataset``.

        The dataset is distributed once and its batches cached on the first
        pass. Evaluators of datasets with the same element spec share one
        trace; the trace depends on whether the dataset is empty or infinite,
        so those are refused.

        Raises:
          ValueError: ``dataset`` is known to be empty or infinite.
        """
        cardinality = int(dataset.cardinality())
        if cardinality in (0, tf.data.INFINITE_CARDINALITY):
            raise ValueError(
                f"cannot evaluate an {'empty' if cardinality == 0 else 'infinite'} dataset"
            )
        dist_dataset = self.strategy.experimental_distribute_dataset(dataset.cache())
        return lambda: _totals(*self._evaluate(dist_dataset))

    def predict_logits(self, images: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Logits ``[N, 10]`` for uint8 images ``[N, 28, 28]`` (inference mode)."""
        return logits_function(self.model, batch_size)(images)

    # -- the speed option: what XLA compiles

    def _compiled(self, fn, part: str):
        """``fn`` compiled by XLA if the plan compiles ``part``, else ``fn`` itself.

        Either way AutoGraph leaves ``fn`` alone: it has no Python control flow
        over tensors, and converting it only added to the first call's tracing.
        """
        if self.jit_compile == part:
            return tf.function(fn, jit_compile=True, autograph=False)
        return tf.autograph.experimental.do_not_convert(fn)


def jit_plan(config: ExperimentConfig, replicas: int) -> tuple[str, str]:
    """What XLA compiles, ``"step"``, ``"gradients"`` or ``"none"``, and why (for the log).

    One replica: the whole replica step (forward, backward, the optimizer, sums).
    Several replicas: the optimizer all-reduces gradients in a cross-replica
    merge that XLA cannot compile, so only the forward/backward pass is
    compiled, unless the model has BatchNormalization, which synchronizes
    batch statistics across replicas inside the forward pass: then the plain
    step runs.
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


# ---------------------------------------------------------------------------- the outer loop


class Hook:
    """Something the outer loop calls around its work (every method is optional).

    The hooks the ``train`` command composes are in ``training.hooks``; a
    hook sees the trainer it was made with and what the loop passes it.
    """

    def before_steps(self, step: int, num_steps: int) -> None:
        """Before a call that takes ``num_steps`` steps from optimizer step ``step``."""

    def after_steps(self, step: int, done: int, chunk: Totals, epoch_totals: Totals) -> None:
        """After that call, now at ``step``: its sums, and the epoch's after ``done`` steps."""

    def after_epoch(self, epoch: int, history: history_lib.History) -> None:
        """After epoch ``epoch`` is validated and recorded in ``history``."""

    def should_stop(self, history: history_lib.History) -> bool:
        """Whether to stop before the next epoch."""
        return False

    def end(self) -> None:
        """When the loop ends, by finishing, stopping or an error."""


def training_batches(
    trainer: Trainer,
    train_input: pipeline.TrainInput,
    first_epoch: int,
    last_epoch: int,
    steps_per_epoch: int,
):
    """One distributed iterator over the batches of epochs ``first_epoch`` .. ``last_epoch``.

    Each input pipeline's dataset holds exactly ``steps_per_epoch`` steps an
    epoch; were the loop to take another count, every later epoch would start
    in the wrong place, so a mismatch is an error here.
    """

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        steps = train_input.steps_per_epoch(context.num_input_pipelines)
        if steps != steps_per_epoch:
            raise ValueError(
                f"{context.num_input_pipelines} input pipeline(s) hold {steps} "
                f"steps an epoch, the loop takes {steps_per_epoch}"
            )
        return train_input.dataset(first_epoch, context, last_epoch)

    return iter(trainer.strategy.distribute_datasets_from_function(dataset_fn))


def train_epoch(
    trainer: Trainer, batches, steps_per_epoch: int, hooks: Sequence[Hook] = ()
) -> tuple[Totals, float]:
    """The next ``steps_per_epoch`` steps of ``batches``, ``steps_per_loop`` per call.

    Returns:
      The epoch's sums and its wall seconds.
    """
    totals, done, start = Totals(), 0, time.perf_counter()
    while done < steps_per_epoch:
        num_steps = min(trainer.config.train.steps_per_loop, steps_per_epoch - done)
        for hook in hooks:
            hook.before_steps(trainer.step, num_steps)
        chunk = trainer.train_steps(batches, num_steps)
        interrupts.check()  # SIGINT/SIGTERM: stop at this step boundary
        totals.add(chunk)
        done += num_steps
        for hook in hooks:
            hook.after_steps(trainer.step, done, chunk, totals)
    return totals, time.perf_counter() - start


def run_epochs(
    trainer: Trainer,
    make_batches: Callable[[int], object],
    validate: Callable[[], Totals],
    history: history_lib.History,
    steps_per_epoch: int,
    hooks: Sequence[Hook] = (),
) -> None:
    """Trains from the epoch after ``trainer.epoch`` to ``config.train.epochs``.

    Args:
      trainer: the inner loop, its state restored.
      make_batches: ``make_batches(first_epoch)``: the iterator of :func:`training_batches`
        from that epoch on, built at the first epoch that trains.
      validate: the validation evaluator.
      history: the per-epoch history so far; each epoch is appended.
      steps_per_epoch: optimizer steps per epoch.
      hooks: called around the steps and after each epoch, in order.
    """
    epochs = trainer.config.train.epochs
    iterator = None
    try:
        for epoch in range(int(trainer.epoch.numpy()) + 1, epochs + 1):
            interrupts.check()  # SIGINT/SIGTERM: stop between epochs, after the checkpoint
            if any(hook.should_stop(history) for hook in hooks):
                break
            if iterator is None:
                iterator = make_batches(epoch)
            train, seconds = train_epoch(trainer, iterator, steps_per_epoch, hooks)
            val = validate()
            history_lib.append(history, train, val, seconds)
            logging.info(
                "epoch %d/%d  %.2fs  %s", epoch, epochs, seconds, _metrics_line(train, val)
            )
            trainer.epoch.assign(epoch)
            for hook in hooks:
                hook.after_epoch(epoch, history)
    finally:
        for hook in hooks:
            hook.end()


def _metrics_line(train: Totals, val: Totals) -> str:
    """``loss 0.1234  accuracy 0.9600  val_loss ...``: every metric, training then validation."""
    pairs = list(train.means().items()) + [(f"val_{n}", v) for n, v in val.means().items()]
    return "  ".join(f"{name} {value:.4f}" for name, value in pairs)


# ------------------------------------------------------------------ the sums behind the metrics


@dataclasses.dataclass
class Totals:
    """Sums over examples, one per metric of ``METRICS``, and the example count."""

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


def batch_sums(labels, logits):
    """Each metric's sum over one batch, the batch's size, and the per-example loss."""
    loss = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    sums = [metric.batch_sum(labels, logits, loss) for metric in METRICS]
    return sums, tf.cast(tf.shape(labels)[0], tf.float32), loss


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


def _totals(sums, count) -> Totals:
    return Totals({n: float(s) for n, s in zip(NAMES, sums)}, float(count))
