"""Creating a model's variables, and a fingerprint of their values (any family)."""

from __future__ import annotations

import hashlib

import numpy as np
import tensorflow as tf

from mnist_research.data.model_input import NUM_PIXELS


def build(model: tf.keras.Model) -> tf.keras.Model:
    """Creates every variable by calling the model on a dummy batch.

    ``model.build(shape)`` creates no variables on a subclassed Keras 3 model;
    they would then be created lazily inside ``strategy.run``, which
    MirroredStrategy rejects. Under a strategy, call this inside ``strategy.scope()``.
    """
    model(tf.zeros((1, NUM_PIXELS)), training=False)
    return model


def weights_fingerprint(model: tf.keras.Model) -> str:
    """SHA-256 of every model variable's bytes (this worker's first replica).

    Equal fingerprints mean bit-identical weights, e.g. across the workers of a
    multi-worker run.
    """
    digest = hashlib.sha256()
    for variable in model.variables:
        digest.update(variable.path.encode("utf-8"))
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()
