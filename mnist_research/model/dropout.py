"""Dropout whose mask is a pure function of a seed.

Keras 3's ``Dropout`` draws its mask from a stateful ``SeedGenerator``. That
state has to be checkpointed for a resumed run to continue the random stream,
and inside an XLA-compiled (``jit_compile=True``) train step its random ops ran
about 20x slower than the rest of the step on a CPU. ``StatelessDropout`` draws
the mask with ``tf.random.stateless_uniform`` (Philox) from a seed it is given:
the trainer passes ``(run seed, optimizer step)``, the model folds in the
replica and the block index. The mask is then a pure function of
``(run seed, step, replica, layer)``: a run resumed at step k replays exactly the
masks an uninterrupted run would have drawn, with no RNG state in the
checkpoint, and XLA fuses the mask into the compiled step.

Called without a seed (plain Keras code: ``model(x, training=True)``,
``model.fit``), each call draws a fresh seed from TensorFlow's global generator,
so ``tf.keras.utils.set_random_seed`` makes such runs repeatable.
"""

from __future__ import annotations

import tensorflow as tf

# Philox, named explicitly rather than "auto_select" (whose choice depends on the
# device). XLA's kernel draws a different stream from TF's for the same seed, so
# an XLA-compiled and a plain step draw different (equally distributed) masks;
# each path on its own is a pure function of the seed.
RNG_ALG = "philox"


def fold_in(seed: tf.Tensor, data) -> tf.Tensor:
    """A new ``[2]`` int64 seed derived from ``seed`` and the integer ``data``."""
    return tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int64), tf.cast(data, tf.int64), alg=RNG_ALG
    )


def fresh_seed() -> tf.Tensor:
    """A ``[2]`` int64 seed drawn from TF's global (stateful) generator."""
    return tf.random.uniform([2], minval=0, maxval=tf.int64.max, dtype=tf.int64)


def replica_seed(seed=None) -> tf.Tensor:
    """``seed`` (or a fresh one) with this replica's id folded in.

    Replicas of a multi-device run get different masks for the same step;
    outside a replica function (or on one replica) the id is 0.
    """
    seed = fresh_seed() if seed is None else tf.cast(seed, tf.int64)
    context = tf.distribute.get_replica_context()
    replica = context.replica_id_in_sync_group if context is not None else 0
    return fold_in(seed, replica)


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class StatelessDropout(tf.keras.layers.Layer):
    """Zeroes a ``rate`` fraction of inputs in training and scales the rest by 1/(1-rate).

    Args:
      rate: fraction of units to drop, in [0, 1).
      salt: an integer folded into the seed, distinct per layer, so layers
        that share a seed draw independent masks.
    """

    def __init__(self, rate: float, salt: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.salt = int(salt)
        self.supports_masking = True

    def call(self, inputs, training=False, seed=None):
        """Applies dropout when ``training`` is true.

        Args:
          inputs: any float tensor.
          training: Python bool; inference is the identity.
          seed: ``[2]`` integer seed for this call; ``None`` draws a fresh one.
        """
        if not training or self.rate == 0.0:
            return inputs
        seed = fold_in(fresh_seed() if seed is None else seed, self.salt)
        uniform = tf.random.stateless_uniform(tf.shape(inputs), seed, alg=RNG_ALG)
        keep = uniform >= self.rate
        scaled = inputs * tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(keep, scaled, tf.zeros_like(scaled))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "salt": self.salt}
