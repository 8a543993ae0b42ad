"""The original notebook's classifier: an MLP of ``DenseBlock`` layers with a softmax head.

Each hidden block is Dense → BatchNormalization → ReLU → Dropout
(``model.blocks.DenseBlock``). Blocks are assigned as individual attributes
(``block_0``, ``block_1``, …) rather than kept in a Python list: Keras 3
subclassed models held in lists are not tracked by ``tf.train.Checkpoint``,
which then silently drops weights and BN moving statistics from checkpoints
(and ``assert_consumed()`` still passes).
"""

from __future__ import annotations

import tensorflow as tf

from mnist_research.config import ModelConfig
from mnist_research.model.blocks import DenseBlock
from mnist_research.model.dropout import replica_seed


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class MLPClassifier(tf.keras.Model):
    """Hidden ``DenseBlock`` layers and a 10-way softmax.

    ``model(x)`` returns probabilities. ``model(x, return_logits=True)`` returns
    the pre-softmax logits, which the trainer uses for a numerically stable
    cross-entropy. The head is float32 even under a mixed-precision policy.
    ``model(x, training=True, dropout_seed=s)`` draws the dropout masks from the
    ``[2]`` integer seed ``s`` (the trainer passes ``(run seed, step)``; the
    replica id and block index are folded in here); without ``dropout_seed``
    every training call draws fresh masks.

    Args:
      hidden_units: widths of the hidden blocks.
      dropout_rates: dropout after each block.
      batch_norm: use BatchNormalization in every block.
      num_classes: number of output classes.
      synchronized_bn: synchronise BN across replicas (multi-replica training).
    """

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
            setattr(
                self,
                f"block_{i}",
                DenseBlock(units, rate, batch_norm, synchronized_bn, index=i, name=f"block_{i}"),
            )
        self.head = tf.keras.layers.Dense(num_classes, dtype="float32", name="logits")
        self.softmax = tf.keras.layers.Softmax(dtype="float32", name="probabilities")

    @classmethod
    def from_config_object(
        cls, config: ModelConfig, synchronized_bn: bool = False
    ) -> MLPClassifier:
        """Builds the model a :class:`ModelConfig` describes."""
        return cls(
            hidden_units=config.hidden_units,
            dropout_rates=config.dropout_rates,
            batch_norm=config.batch_norm,
            num_classes=config.num_classes,
            synchronized_bn=synchronized_bn,
            name="mlp_classifier",
        )

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

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "dropout_rates": list(self.dropout_rates),
            "batch_norm": self.batch_norm,
            "num_classes": self.num_classes,
            "synchronized_bn": self.synchronized_bn,
        }
