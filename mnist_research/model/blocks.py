"""Layers the model families share: the dense hidden block."""

from __future__ import annotations

import tensorflow as tf

from mnist_research.model.dropout import StatelessDropout


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class DenseBlock(tf.keras.layers.Layer):
    """Dense → (BatchNormalization) → ReLU → Dropout.

    Args:
      units: width of the Dense layer.
      dropout_rate: dropout probability after the activation.
      batch_norm: insert BatchNormalization (the Dense then has no bias).
      synchronized_bn: synchronise BN batch statistics across replicas.
      index: the block's position in the model; folded into its dropout seed
        so blocks draw independent masks.
    """

    def __init__(
        self,
        units: int,
        dropout_rate: float,
        batch_norm: bool = True,
        synchronized_bn: bool = False,
        index: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.dropout_rate = dropout_rate
        self.batch_norm = batch_norm
        self.synchronized_bn = synchronized_bn
        self.index = index
        self.dense = tf.keras.layers.Dense(units, use_bias=not batch_norm, name="dense")
        self.norm = (
            tf.keras.layers.BatchNormalization(synchronized=synchronized_bn, name="batch_norm")
            if batch_norm
            else None
        )
        self.activation = tf.keras.layers.ReLU(name="relu")
        self.dropout = StatelessDropout(dropout_rate, salt=index, name="dropout")

    def sublayers(self) -> list[tf.keras.layers.Layer]:
        """The block's layers in the order they are applied."""
        return [
            layer
            for layer in (self.dense, self.norm, self.activation, self.dropout)
            if layer is not None
        ]

    def call(self, inputs, training=False, seed=None):
        """``seed``: the ``[2]`` dropout seed of this step (``None``: a fresh one)."""
        x = self.dense(inputs)
        if self.norm is not None:
            x = self.norm(x, training=training)
        x = self.activation(x)
        return self.dropout(x, training=training, seed=seed)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "dropout_rate": self.dropout_rate,
            "batch_norm": self.batch_norm,
            "synchronized_bn": self.synchronized_bn,
            "index": self.index,
        }
