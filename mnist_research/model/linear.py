"""The smallest family: one Dense layer and a softmax (multinomial logistic regression)."""

from __future__ import annotations

import tensorflow as tf

from mnist_research.config import ModelConfig


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class LinearClassifier(tf.keras.Model):
    """``softmax(x W + b)`` on the flat ``[N, 784]`` input; no hidden blocks, no dropout."""

    def __init__(self, num_classes=10, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.head = tf.keras.layers.Dense(num_classes, dtype="float32", name="logits")
        self.softmax = tf.keras.layers.Softmax(dtype="float32", name="probabilities")

    @classmethod
    def from_config_object(
        cls, config: ModelConfig, synchronized_bn: bool = False
    ) -> LinearClassifier:
        return cls(num_classes=config.num_classes, name="linear_classifier")

    def call(self, inputs, training=False, return_logits=False, dropout_seed=None):
        logits = self.head(inputs)
        return logits if return_logits else self.softmax(logits)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
