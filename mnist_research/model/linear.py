"""The smallest family: one Dense layer and a softmax (multinomial logistic regression)."""

from __future__ import annotations

import tensorflow as tf

from mnist_research.model.mlp import MLPClassifier


@tf.keras.utils.register_keras_serializable(package="mnist_research")
class LinearClassifier(MLPClassifier):
    """``softmax(x W + b)`` on the flat ``[N, 784]`` input: the MLP without hidden blocks."""

    default_name = "linear_classifier"

    def __init__(self, num_classes=10, **kwargs):
        # Over a ModelConfig's and a saved config's values too: a linear model has no hidden
        # blocks, and without BatchNormalization synchronized_bn changes nothing (kept False).
        kwargs.update(hidden_units=(), dropout_rates=(), batch_norm=False, synchronized_bn=False)
        super().__init__(num_classes=num_classes, **kwargs)
