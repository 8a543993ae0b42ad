"""The optimizers' builders (:data:`BUILDERS`) and Adam's fused kernel."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from mnist_research.config import TrainConfig


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class FusedAdam(tf.keras.optimizers.Adam):
    """``tf.keras.optimizers.Adam`` whose per-variable update is one ``ResourceApplyAdam``
    kernel (the kernel Keras 2 used).

    Keras 3's ``Adam.update_step`` issues about a dozen small ops per variable per
    step (two moment updates, bias correction, the parameter update): for a small
    MLP on a CPU, that per-op overhead is a large share of the step. Keras's moment
    variables are kept, so checkpoints and every other optimizer behaviour are
    unchanged; the update rule is identical: ``lr_t = lr * sqrt(1 - beta2^t) /
    (1 - beta1^t)``, ``var -= lr_t * m / (sqrt(v) + epsilon)``. AMSGrad and
    non-resource variables take the Keras update.
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


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """The learning rate (a float or a Keras schedule, spanning every epoch) that
    ``config.lr_schedule`` names."""
    total = max(1, config.epochs * steps_per_epoch)
    if config.lr_schedule == "cosine":
        return tf.keras.optimizers.schedules.CosineDecay(config.learning_rate, total)
    if config.lr_schedule == "step":
        return tf.keras.optimizers.schedules.PiecewiseConstantDecay(
            [total // 2, (3 * total) // 4],
            [config.learning_rate, config.learning_rate * 0.1, config.learning_rate * 0.01],
        )
    return config.learning_rate


# One builder per config.registry.OPTIMIZERS entry, by the same name: the Keras optimizer
# for a TrainConfig and a learning rate.
BUILDERS: dict[str, Callable[[TrainConfig, object], tf.keras.optimizers.Optimizer]] = {
    "adam": lambda config, rate: (
        FusedAdam(rate) if config.fused_adam else tf.keras.optimizers.Adam(rate)
    ),
    "adamw": lambda config, rate: tf.keras.optimizers.AdamW(rate, weight_decay=config.weight_decay),
    "sgd": lambda config, rate: tf.keras.optimizers.SGD(
        rate, momentum=config.momentum, weight_decay=config.weight_decay or None
    ),
}


def build(config: TrainConfig, steps_per_epoch: int) -> tf.keras.optimizers.Optimizer:
    """The optimizer ``config.optimizer`` names, at the rate ``config.lr_schedule`` gives."""
    return BUILDERS[config.optimizer](config, learning_rate(config, steps_per_epoch))
