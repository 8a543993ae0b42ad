"""The model families' classes by ``--model`` name; creating and fingerprinting a model's variables.

Every family takes float pixels ``[N, 784]`` (``data.pipeline.to_model_input``)
and answers ``model(x, training=..., return_logits=...)``, so everything past
model construction (trainer, checkpoints, export, evaluation, predict) is the
same for all of them. A family is its module under ``model/``, its TensorFlow-free
entry in ``config.registry.MODEL_FAMILIES`` and its entry in :data:`FAMILIES`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from mnist_research.config import ModelConfig
from mnist_research.data.pipeline import NUM_PIXELS
from mnist_research.model.mlp import MLPClassifier


def _cnn() -> type[tf.keras.Model]:
    from mnist_research.model.cnn import CNNClassifier

    return CNNClassifier


def _linear() -> type[tf.keras.Model]:
    from mnist_research.model.linear import LinearClassifier

    return LinearClassifier


# Each entry imports its family's module (registering its Keras classes) only when called, and
# returns the class: a run loads the family it builds, and mlp.py, whose blocks all families share.
FAMILIES: dict[str, Callable[[], type[tf.keras.Model]]] = {
    "mlp": lambda: MLPClassifier,
    "cnn": _cnn,
    "linear": _linear,
}


def create(config: ModelConfig, synchronized_bn: bool = False) -> tf.keras.Model:
    """The model ``config`` describes, every variable created by a call on a dummy batch.

    ``model.build(shape)`` creates no variables on a subclassed Keras 3 model;
    they would then be created lazily inside ``strategy.run``, which
    MirroredStrategy rejects. Under a strategy, call this inside ``strategy.scope()``.
    """
    model = FAMILIES[config.family]().from_config_object(config, synchronized_bn)
    model(tf.zeros((1, NUM_PIXELS)), training=False)
    return model


def weights_fingerprint(model: tf.keras.Model) -> str:
    """SHA-256 of every model variable's path and bytes (this worker's first replica): equal
    fingerprints mean bit-identical weights, e.g. across the workers of a multi-worker run."""
    digest = hashlib.sha256()
    for variable in model.variables:
        digest.update(variable.path.encode("utf-8"))
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()
