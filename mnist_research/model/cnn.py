"""A small convolutional classifier: conv blocks, then the MLP's dense blocks and softmax head.

Each conv block halves the resolution (28 → 14 → 7 …): a stride-2 convolution
(``pooling="stride"``, the default) trains several times faster on a 2-core CPU
than a stride-1 convolution and a 2x2 max-pool (``pooling="max"``), whose
gradient at full resolution dominates the step, for the same output size. The
model reshapes the flat ``[N, 784]`` input every family takes to ``[N, 28, 28, 1]``
itself; its blocks are attributes, not a list, for the checkpoint's sake (see
``mlp.MLPClassifier``).
"""

from __future__ import annotations

import tensorflow as tf

from mnist_research.data.pipeline import IMAGE_SHAPE
from mnist_research.model.mlp import Classifier, DenseBlock, StatelessDropout, replica_seed


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class ConvBlock(tf.keras.layers.Layer):
    """Conv2D → (BatchNormalization) → ReLU → (MaxPool) → Dropout, as ``DenseBlock`` is."""

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        dropout_rate: float,
        pooling: str = "stride",
        batch_norm: bool = True,
        synchronized_bn: bool = False,
        index: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        strides = 2 if pooling == "stride" else 1
        self.conv = tf.keras.layers.Conv2D(
            filters, kernel_size, strides, padding="same", use_bias=not batch_norm, name="conv"
        )
        self.norm, self.pool = None, None
        if batch_norm:
            self.norm = tf.keras.layers.BatchNormalization(
                synchronized=synchronized_bn, name="batch_norm"
            )
        self.activation = tf.keras.layers.ReLU(name="relu")
        if pooling == "max":
            self.pool = tf.keras.layers.MaxPooling2D(2, padding="same", name="max_pool")
        self.dropout = StatelessDropout(dropout_rate, salt=index, name="dropout")

    def call(self, inputs, training=False, seed=None):
        """``seed``: the ``[2]`` dropout seed of this step (``None``: a fresh one)."""
        x = self.conv(inputs)
        if self.norm is not None:
            x = self.norm(x, training=training)
        x = self.activation(x)
        if self.pool is not None:
            x = self.pool(x)
        return self.dropout(x, training=training, seed=seed)


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class CNNClassifier(Classifier):
    """Conv blocks, dense blocks and a 10-way softmax, called as ``mlp.MLPClassifier`` is."""

    config_fields = ("conv_filters", "conv_dropout_rates", "conv_kernel_size", "conv_pooling")
    config_fields += ("hidden_units", "dropout_rates", "batch_norm", "num_classes")
    default_name = "cnn_classifier"

    def __init__(
        self,
        conv_filters=(32, 64),
        conv_dropout_rates=(0.1, 0.1),
        conv_kernel_size=3,
        conv_pooling="stride",
        hidden_units=(128,),
        dropout_rates=(0.4,),
        batch_norm=True,
        num_classes=10,
        synchronized_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.conv_filters = tuple(conv_filters)
        self.conv_dropout_rates = tuple(conv_dropout_rates)
        self.conv_kernel_size = conv_kernel_size
        self.conv_pooling = conv_pooling
        self.hidden_units = tuple(hidden_units)
        self.dropout_rates = tuple(dropout_rates)
        self.batch_norm = batch_norm
        self.num_classes = num_classes
        self.synchronized_bn = synchronized_bn
        self.to_image = tf.keras.layers.Reshape((*IMAGE_SHAPE, 1), name="to_image")
        norm = {"batch_norm": batch_norm, "synchronized_bn": synchronized_bn}
        conv = {"kernel_size": conv_kernel_size, "pooling": conv_pooling, **norm}
        for i, (filters, rate) in enumerate(zip(self.conv_filters, self.conv_dropout_rates)):
            block = ConvBlock(filters, dropout_rate=rate, index=i, name=f"conv_block_{i}", **conv)
            setattr(self, block.name, block)
        self.flatten = tf.keras.layers.Flatten(name="flatten")
        for i, (units, rate) in enumerate(zip(self.hidden_units, self.dropout_rates)):
            # Dropout salts continue after the conv blocks': every block draws its own masks.
            index = len(self.conv_filters) + i
            block = DenseBlock(units, rate, index=index, name=f"dense_block_{i}", **norm)
            setattr(self, block.name, block)
        self.head = tf.keras.layers.Dense(num_classes, dtype="float32", name="logits")
        self.softmax = tf.keras.layers.Softmax(dtype="float32", name="probabilities")

    @property
    def conv_blocks(self) -> list[ConvBlock]:
        return [getattr(self, f"conv_block_{i}") for i in range(len(self.conv_filters))]

    @property
    def dense_blocks(self) -> list[DenseBlock]:
        return [getattr(self, f"dense_block_{i}") for i in range(len(self.hidden_units))]

    def call(self, inputs, training=False, return_logits=False, dropout_seed=None):
        rates = self.conv_dropout_rates + self.dropout_rates
        seed = replica_seed(dropout_seed) if training and any(rates) else None
        x = self.to_image(inputs)
        for block in self.conv_blocks:
            x = block(x, training=training, seed=seed)
        x = self.flatten(x)
        for block in self.dense_blocks:
            x = block(x, training=training, seed=seed)
        logits = self.head(x)
        return logits if return_logits else self.softmax(logits)
