"""The original notebook's classifier, a multilayer perceptron, and the dropout it uses.

Read top to bottom: :class:`Classifier` (what every family shares: how it is
built from a ``ModelConfig`` and saved), :class:`MLPClassifier` (the model),
:class:`DenseBlock` (one hidden block) and :class:`StatelessDropout` (dropout
whose mask is a pure function of a seed). The CNN family reuses all but the MLP.
"""

from __future__ import annotations

import tensorflow as tf

from mnist_research.config import ModelConfig


class Classifier(tf.keras.Model):
    """A model family built from the ``ModelConfig`` fields named in ``config_fields``.

    Each field is also a constructor argument and an attribute of the same name.
    Keras 3 records a Layer's constructor arguments by itself but a Model's only
    as their defaults, so :meth:`get_config` writes them out (for ``model.keras``).
    """

    config_fields: tuple[str, ...] = ()
    default_name = "classifier"

    @classmethod
    def from_config_object(cls, config: ModelConfig, synchronized_bn: bool = False):
        fields = {name: getattr(config, name) for name in cls.config_fields}
        return cls(**fields, synchronized_bn=synchronized_bn, name=cls.default_name)

    def get_config(self):
        fields = {name: getattr(self, name) for name in (*self.config_fields, "synchronized_bn")}
        saved = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
        return {**super().get_config(), **saved}


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class MLPClassifier(Classifier):
    """Hidden ``DenseBlock`` layers and a 10-way softmax.

    ``model(x)`` returns probabilities; ``return_logits=True``, the pre-softmax
    logits, for a numerically stable cross-entropy. The head is float32 even
    under a mixed-precision policy. ``model(x, training=True, dropout_seed=s)``
    draws the dropout masks from the ``[2]`` integer seed ``s`` (the trainer
    passes ``(run seed, step)``; the replica id and block index are folded in
    here); without ``dropout_seed`` every training call draws fresh masks.

    Blocks are assigned as individual attributes (``block_0``, ``block_1``, …)
    rather than kept in a Python list: Keras 3 subclassed models held in lists
    are not tracked by ``tf.train.Checkpoint``, which then silently drops weights
    and BN moving statistics from checkpoints (and ``assert_consumed()`` still
    passes). ``synchronized_bn``: BN statistics across replicas (multi-replica
    training).
    """

    config_fields = ("hidden_units", "dropout_rates", "batch_norm", "num_classes")
    default_name = "mlp_classifier"

    def __init__(
        self,
        hidden_units=(256, 128, 64),
        dropout_rates=(0.3, 0.3, 0.2),
        batch_norm=True,
        num_classes=10,
        synchronized_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_units = tuple(hidden_units)
        self.dropout_rates = tuple(dropout_rates)
        self.batch_norm = batch_norm
        self.num_classes = num_classes
        self.synchronized_bn = synchronized_bn
        for i, (units, rate) in enumerate(zip(self.hidden_units, self.dropout_rates)):
            block = DenseBlock(units, rate, batch_norm, synchronized_bn, index=i, name=f"block_{i}")
            setattr(self, block.name, block)
        self.head = tf.keras.layers.Dense(num_classes, dtype="float32", name="logits")
        self.softmax = tf.keras.layers.Softmax(dtype="float32", name="probabilities")

    @property
    def blocks(self) -> list[DenseBlock]:
        return [getattr(self, f"block_{i}") for i in range(len(self.hidden_units))]

    def call(self, inputs, training=False, return_logits=False, dropout_seed=None):
        x = inputs
        seed = replica_seed(dropout_seed) if training and any(self.dropout_rates) else None
        for block in self.blocks:
            x = block(x, training=training, seed=seed)
        logits = self.head(x)
        return logits if return_logits else self.softmax(logits)


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class DenseBlock(tf.keras.layers.Layer):
    """Dense → (BatchNormalization) → ReLU → Dropout; the Dense has no bias before a BN."""

    def __init__(
        self, units, dropout_rate, batch_norm=True, synchronized_bn=False, index=0, **kwargs
    ):
        super().__init__(**kwargs)
        self.dense = tf.keras.layers.Dense(units, use_bias=not batch_norm, name="dense")
        self.norm = (
            tf.keras.layers.BatchNormalization(synchronized=synchronized_bn, name="batch_norm")
            if batch_norm
            else None
        )
        self.activation = tf.keras.layers.ReLU(name="relu")
        self.dropout = StatelessDropout(dropout_rate, salt=index, name="dropout")

    def call(self, inputs, training=False, seed=None):
        x = self.dense(inputs)
        if self.norm is not None:
            x = self.norm(x, training=training)
        x = self.activation(x)
        return self.dropout(x, training=training, seed=seed)


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class StatelessDropout(tf.keras.layers.Layer):
    """Zeroes a ``rate`` fraction of inputs in training and scales the rest by 1/(1-rate).

    Keras 3's ``Dropout`` draws its mask from a stateful ``SeedGenerator``: that
    state would have to be checkpointed for a resumed run to continue the random
    stream, and inside an XLA-compiled train step its random ops ran about 20x
    slower than the rest of the step on a CPU. This layer draws the mask with
    ``tf.random.stateless_uniform`` from the seed it is given, so the mask is a
    pure function of ``(run seed, step, replica, layer)``: a run resumed at step
    k replays exactly the masks an uninterrupted run would have drawn, and XLA
    fuses the mask into the compiled step. Called without a seed (plain Keras
    code: ``model(x, training=True)``), each call draws a fresh seed from
    TensorFlow's global generator, so ``tf.keras.utils.set_random_seed`` makes
    such runs repeatable. ``salt``, distinct per layer, is folded into the seed
    so that layers sharing a seed draw independent masks.
    """

    def __init__(self, rate: float, salt: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.salt = int(salt)
        self.supports_masking = True

    def call(self, inputs, training=False, seed=None):
        if not training or self.rate == 0.0:
            return inputs
        seed = fold_in(fresh_seed() if seed is None else seed, self.salt)
        uniform = tf.random.stateless_uniform(tf.shape(inputs), seed, alg=RNG_ALG)
        keep = uniform >= self.rate
        scaled = inputs * tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(keep, scaled, tf.zeros_like(scaled))

    def compute_output_shape(self, input_shape):
        return input_shape


# Philox, named explicitly rather than "auto_select" (whose choice depends on the
# device). XLA's kernel draws a different stream from TF's for the same seed, so
# an XLA-compiled and a plain step draw different (equally distributed) masks;
# each path on its own is a pure function of the seed.
RNG_ALG = "philox"


def fold_in(seed, data) -> tf.Tensor:
    """A new ``[2]`` int64 seed derived from ``seed`` and the integer ``data``."""
    return tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int64), tf.cast(data, tf.int64), alg=RNG_ALG
    )


def fresh_seed() -> tf.Tensor:
    """A ``[2]`` int64 seed drawn from TF's global (stateful) generator."""
    return tf.random.uniform([2], minval=0, maxval=tf.int64.max, dtype=tf.int64)


def replica_seed(seed=None) -> tf.Tensor:
    """``seed`` (or a fresh one) with this replica's id folded in (0 outside a replica function).

    Replicas of a multi-device run so draw different masks for the same step.
    """
    seed = fresh_seed() if seed is None else tf.cast(seed, tf.int64)
    context = tf.distribute.get_replica_context()
    replica = context.replica_id_in_sync_group if context is not None else 0
    return fold_in(seed, replica)
