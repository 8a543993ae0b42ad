"""The training loop, top to bottom: the replica step, many steps per call, evaluation, epochs.

1. :class:`Trainer` creates the model, the optimizer and the running sums
   inside ``strategy.scope()`` (variables created lazily inside
   ``strategy.run`` fail on 2+ replicas; an optimizer created outside the scope
   lets replicas drift apart silently).
2. :meth:`Trainer._replica_step` is one optimizer step on one replica: forward
   pass, per-example cross-entropy, the loss scaled by the *global* batch size
   (the optimizer sums gradients across replicas), gradients, clipping of their
   sum, the optimizer's update, and the batch's metric sums (:data:`BATCH_SUMS`).
3. :meth:`Trainer.train_steps` runs many replica steps in one ``tf.function``
   call (a ``tf.range`` loop), so Python is out of the per-step path.
4. :func:`run_epochs` is the outer loop: train an epoch, validate
   (:meth:`Trainer.make_evaluator`), record the history, and call the hooks.

The speed options sit around the plain step and change none of its math:
``--jit_compile`` compiles the step with XLA (:func:`jit_plan`, at the end, says
what is compiled on how many replicas), and ``--fused_adam`` swaps Adam's update
for one fused kernel per variable (``training.optimizers``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import tensorflow as tf
from absl import logging

from mnist_research import interrupts
from mnist_research.config import ExperimentConfig
from mnist_research.config.registry import METRIC_NAMES as NAMES
from mnist_research.errors import ConfigError, NonFiniteLossError
from mnist_research.model import registry
from mnist_research.training import history as history_lib
from mnist_research.training import optimizers
from mnist_research.training.history import ReplicaSums, Totals

# ---------------------------------------------------------------------------- the inner loop


class Trainer:
    """The model, the optimizer and the compiled train and evaluation functions
    (``steps_per_epoch`` lets learning-rate schedules span the whole run)."""

    def __init__(
        self, config: ExperimentConfig, strategy: tf.distribute.Strategy, steps_per_epoch: int = 1
    ):
        self.config = config
        self.strategy = strategy
        self.global_batch_size = config.train.batch_size
        self._seed = tf.constant(config.train.seed, tf.int64)
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
        self.jit_compile = jit_plan(config, replicas)
        self._gradients = compiled(self._forward_backward, self.jit_compile == "gradients")
        self._step = compiled(self._replica_step, self.jit_compile == "step")
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
        value = self.optimizer.learning_rate  # numpy(): float() fails on a MirroredVariable
        return float(value.numpy() if hasattr(value, "numpy") else value)

    # -- one step on one replica

    def _replica_step(self, batch):
        images, labels = batch
        # Dropout masks are a function of (run seed, step); the model folds in
        # the replica and the layer, so a resumed run replays them exactly.
        seed = tf.stack([self._seed, tf.cast(self.optimizer.iterations, tf.int64)])
        grads, sums, count = self._gradients(images, labels, seed)  # _forward_backward
        clip_norm = self.config.train.clip_global_norm
        apply_gradients(self.optimizer, grads, self.model.trainable_variables, clip_norm)
        self._train_sums.add(sums, count, step=self.optimizer.iterations)

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

    # -- many steps per call

    def _train_loop_fn(self, iterator, num_steps):
        self._train_sums.reset()
        for _ in tf.range(num_steps):
            self.strategy.run(self._step, args=(next(iterator),))  # _replica_step
        return self._train_sums.read(self.strategy)

    def train_steps(self, iterator, num_steps: int) -> Totals:
        """Runs ``num_steps`` training steps in one tf.function call; a NonFiniteLossError
        names the first step whose loss was NaN or Inf."""
        sums, bad_step = self._train_loop(iterator, tf.constant(num_steps, tf.int32))
        result = Totals.from_vector(sums)
        bad_step = int(bad_step)
        if bad_step >= 0 or not math.isfinite(result.sums["loss"]):
            raise NonFiniteLossError(
                f"loss became NaN or Inf at step {bad_step if bad_step >= 0 else self.step}; "
                f"lower --learning_rate or check the data"
            )
        return result

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
        return self._eval_sums.read(self.strategy)[0]

    def make_evaluator(self, dataset: tf.data.Dataset) -> Callable[[], Totals]:
        """A no-argument function that sums the metrics over all of ``dataset``.

        The dataset is distributed once and its batches cached on the first
        pass. Evaluators of datasets with the same element spec share one
        trace; the trace depends on whether the dataset is empty or infinite,
        so those are refused (ValueError).
        """
        cardinality = int(dataset.cardinality())
        if cardinality in (0, tf.data.INFINITE_CARDINALITY):
            raise ValueError(
                f"cannot evaluate an {'empty' if cardinality == 0 else 'infinite'} dataset"
            )
        dist_dataset = self.strategy.experimental_distribute_dataset(dataset.cache())
        return lambda: Totals.from_vector(self._evaluate(dist_dataset))


# How one batch adds to each metric of ``config.registry.METRICS``, by name: its sum
# over the batch, from the one-hot ``labels``, the ``logits`` and the per-example
# cross-entropy ``loss``.
BATCH_SUMS: dict[str, Callable] = {
    "loss": lambda labels, logits, loss: tf.reduce_sum(loss),
    "accuracy": lambda labels, logits, loss: tf.reduce_sum(
        tf.cast(tf.equal(tf.argmax(logits, -1), tf.argmax(labels, -1)), tf.float32)
    ),
}
if set(BATCH_SUMS) != set(NAMES):
    raise ImportError(f"BATCH_SUMS must hold exactly the declared metrics {NAMES}")


def batch_sums(labels, logits):
    """Each metric's sum over one batch, the batch's size, and the per-example loss."""
    loss = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    sums = [BATCH_SUMS[name](labels, logits, loss) for name in NAMES]
    return sums, tf.cast(tf.shape(labels)[0], tf.float32), loss


def apply_gradients(optimizer, grads: list, variables: list, clip_norm: float) -> None:
    """``optimizer.apply_gradients``, the gradient summed over replicas first clipped to
    global norm ``clip_norm`` (0: not clipped).

    Under mixed precision the gradients are loss-scaled, so the threshold is too.
    """
    if clip_norm:
        if isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
            clip_norm = clip_norm * optimizer.dynamic_scale
        grads = clip_by_summed_norm(grads, clip_norm)
    optimizer.apply_gradients(zip(grads, variables))


def clip_by_summed_norm(grads: list, clip_norm) -> list:
    """Each replica's gradients, scaled so that their sum has a global norm <= ``clip_norm``.

    Call it in a replica context. The sum's norm needs the sum: the gradients
    are all-reduced for it (on 2+ replicas), and every replica scales its own
    share by the same factor, so the optimizer's cross-replica sum is the
    clipped sum (Keras's ``global_clipnorm`` clips each replica's share before
    the sum instead). A non-finite norm leaves the gradients as they are (the
    loss-scale optimizer skips such a step).
    """
    context = tf.distribute.get_replica_context()
    if context.num_replicas_in_sync > 1:
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    else:
        summed = grads
    norm = tf.linalg.global_norm(summed)
    clip_norm = tf.cast(clip_norm, norm.dtype)
    factor = tf.where(tf.math.is_finite(norm), clip_norm / tf.maximum(norm, clip_norm), 1.0)
    return [g * tf.cast(factor, g.dtype) for g in grads]


# ---------------------------------------------------------------------------- the outer loop


class Hook:
    """Something the outer loop calls around its work (every method is optional).

    The ``train`` command's hooks are in ``training.hooks``."""

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


def run_epochs(
    trainer: Trainer,
    make_batches: Callable[[int], object],
    validate: Callable[[], Totals],
    history: history_lib.History,
    steps_per_epoch: int,
    hooks: Sequence[Hook] = (),
) -> None:
    """Trains from the epoch after ``trainer.epoch`` to ``config.train.epochs``.

    ``make_batches(first_epoch)`` gives the batches from that epoch on
    (``TrainInput.distributed``), built at the first epoch that trains; the
    ``hooks`` are called in order.
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
            logging.info("epoch %d/%d  %.2fs  %s", epoch, epochs, seconds, train.line(val))
            trainer.epoch.assign(epoch)
            for hook in hooks:
                hook.after_epoch(epoch, history)
    finally:
        for hook in hooks:
            hook.end()


def train_epoch(
    trainer: Trainer, batches, steps_per_epoch: int, hooks: Sequence[Hook] = ()
) -> tuple[Totals, float]:
    """The next ``steps_per_epoch`` steps of ``batches``, ``steps_per_loop`` per call:
    the epoch's sums and its wall seconds."""
    epoch_totals, done, start = Totals(), 0, time.perf_counter()
    while done < steps_per_epoch:
        num_steps = min(trainer.config.train.steps_per_loop, steps_per_epoch - done)
        for hook in hooks:
            hook.before_steps(trainer.step, num_steps)
        chunk = trainer.train_steps(batches, num_steps)
        interrupts.check()  # SIGINT/SIGTERM: stop at this step boundary
        epoch_totals.add(chunk)
        done += num_steps
        for hook in hooks:
            hook.after_steps(trainer.step, done, chunk, epoch_totals)
    return epoch_totals, time.perf_counter() - start


# ---------------------------------------------------------------------------- the XLA option


def jit_plan(config: ExperimentConfig, replicas: int) -> str:
    """What ``--jit_compile`` compiles: ``"step"``, ``"gradients"`` or ``"none"``.

    One replica: the whole replica step (forward, backward, the optimizer, sums).
    Several replicas: the optimizer all-reduces gradients in a cross-replica merge
    that XLA cannot compile, so only the forward/backward pass is compiled, unless
    the model has BatchNormalization, which synchronizes batch statistics across
    replicas inside the forward pass: then the plain step runs.
    """
    if not config.train.jit_compile:
        return "none"
    if replicas == 1:
        return "step"
    if config.model.batch_norm:
        logging.debug("jit_compile falls back to the plain step: synchronized BatchNormalization")
        return "none"
    return "gradients"


def compiled(fn, jit_compile: bool):
    """``fn`` compiled by XLA when ``jit_compile``, else ``fn`` itself.

    Either way AutoGraph leaves ``fn`` alone: it has no Python control flow
    over tensors, and converting it only added to the first call's tracing.
    """
    if jit_compile:
        return tf.function(fn, jit_compile=True, autograph=False)
    return tf.autograph.experimental.do_not_convert(fn)
