"""The optimizers' builders, clipping by the global norm, and Adam's fused kernel.

``BUILDERS`` holds one builder per ``config.optimizers.OPTIMIZERS`` entry:
the Keras optimizer it makes from a ``TrainConfig`` and a learning rate.
:func:`apply_gradients` applies gradients, clipped first when
``--clip_global_norm`` is on.

Keras 3's ``Adam.update_step`` issues about a dozen small ops per variable per
step (two moment updates, bias correction, the parameter update). For a small
MLP on a CPU, that per-op overhead is a large share of the step.
``FusedAdam`` computes the same update with one ``ResourceApplyAdam`` kernel per
variable (the kernel Keras 2 used), keeping Keras's moment variables, so
checkpoints and every other optimizer behaviour are unchanged. The update rule
is identical: ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``,
``var -= lr_t * m / (sqrt(v) + epsilon)``.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from mnist_research.config import TrainConfig

_SUM = tf.distribute.ReduceOp.SUM


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class FusedAdam(tf.keras.optimizers.Adam):
    """``tf.keras.optimizers.Adam`` whose per-variable update is one fused kernel.

    Falls back to the Keras update for AMSGrad and non-resource variables.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not hasattr(variable, "handle"):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.value.handle,
            v=v.value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )


def learning_rate(config, steps_per_epoch: int):
    """The learning rate (a float or a Keras schedule) that ``config.lr_schedule`` names.

    Args:
      config: a ``TrainConfig``.
      steps_per_epoch: optimizer steps per epoch (schedules span all epochs).
    """
    total = max(1, config.epochs * steps_per_epoch)
    if config.lr_schedule == "cosine":
        return tf.keras.optimizers.schedules.CosineDecay(config.learning_rate, total)
    if config.lr_schedule == "step":
        return tf.keras.optimizers.schedules.PiecewiseConstantDecay(
            [total // 2, (3 * total) // 4],
            [config.learning_rate, config.learning_rate * 0.1, config.learning_rate * 0.01],
        )
    return config.learning_rate


def _adam(config: TrainConfig, rate) -> tf.keras.optimizers.Optimizer:
    return (FusedAdam if config.fused_adam else tf.keras.optimizers.Adam)(rate)


def _adamw(config: TrainConfig, rate) -> tf.keras.optimizers.Optimizer:
    return tf.keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)


def _sgd(config: TrainConfig, rate) -> tf.keras.optimizers.Optimizer:
    return tf.keras.optimizers.SGD(
        rate, momentum=config.momentum, weight_decay=config.weight_decay or None
    )


# One builder per config.optimizers.OPTIMIZERS entry, by the same name.
BUILDERS: dict[str, Callable[[TrainConfig, object], tf.keras.optimizers.Optimizer]] = {
    "adam": _adam,
    "adamw": _adamw,
    "sgd": _sgd,
}


def build(config: TrainConfig, steps_per_epoch: int) -> tf.keras.optimizers.Optimizer:
    """The optimizer ``config.optimizer`` names, at the rate ``config.lr_schedule`` gives."""
    return BUILDERS[config.optimizer](config, learning_rate(config, steps_per_epoch))


def clip_by_summed_norm(grads: list, clip_norm) -> list:
    """Each replica's gradients, scaled so that their sum has a global norm <= ``clip_norm``.

    Call it in a replica context. The sum's norm needs the sum: the gradients
    are all-reduced for it (on 2+ replicas), and every replica scales its own
    share by the same factor, so the optimizer's cross-replica sum is the
    clipped sum. A non-finite norm leaves the gradients as they are (the
    loss-scale optimizer skips such a step).
    """
    context = tf.distribute.get_replica_context()
    summed = context.all_reduce(_SUM, grads) if context.num_replicas_in_sync > 1 else grads
    norm = tf.linalg.global_norm(summed)
    clip_norm = tf.cast(clip_norm, norm.dtype)
    factor = tf.where(tf.math.is_finite(norm), clip_norm / tf.maximum(norm, clip_norm), 1.0)
    return [g * tf.cast(factor, g.dtype) for g in grads]


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
