"""The smallest family: one Dense layer and a softmax (multinomial logistic regression)."""

from __future__ import annotations

import tensorflow as tf

from mnist_research.config import ModelConfig
from mnist_research.model.mlp import MLPClassifier


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class LinearClassifier(MLPClassifier):
    """``softmax(x W + b)`` on the flat ``[N, 784]`` input: the MLP without hidden blocks."""

    default_name = "linear_classifier"

    def __init__(self, num_classes=10, **kwargs):
        # Over a saved config's values too: a linear model has no hidden blocks.
        kwargs.update(hidden_units=(), dropout_rates=(), batch_norm=False)
        super().__init__(num_classes=num_classes, **kwargs)

    @classmethod
    def from_config_object(cls, config: ModelConfig, synchronized_bn: bool = False):
        # Without BatchNormalization synchronized_bn changes nothing: its config keeps False.
        return cls(num_classes=config.num_classes, name=cls.default_name)
