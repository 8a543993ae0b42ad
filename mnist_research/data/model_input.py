"""The model's input contract: uint8 images ``[N, 28, 28]`` → float ``[N, 784]`` in [0, 1].

Training, evaluation, the export's serving signature, checkpoint loading,
predict and the benchmark all call :func:`to_model_input`, so a model sees the
same numbers whichever path feeds it. :func:`logits_function` wraps a model
into the uint8-in, logits-out function that evaluation and predict use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

IMAGE_SHAPE = (28, 28)
NUM_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
NUM_CLASSES = 10

LogitsFn = Callable[[np.ndarray], np.ndarray]


def to_model_input(images) -> tf.Tensor:
    """uint8 ``[N, 28, 28]`` (or ``[N, 784]``) → float32 ``[N, 784]`` scaled to [0, 1]."""
    return tf.reshape(tf.cast(images, tf.float32) / 255.0, [-1, NUM_PIXELS])


def batched(
    logits_fn: Callable[[np.ndarray], object], images: np.ndarray, batch_size: int = 2048
) -> np.ndarray:
    """Runs ``logits_fn`` over uint8 images in batches (bounded memory); returns ``[N, C]``."""
    images = np.asarray(images, np.uint8).reshape(-1, *IMAGE_SHAPE)
    chunks = [
        np.asarray(logits_fn(images[i : i + batch_size])) for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)


def logits_function(model: tf.keras.Model, batch_size: int = 2048) -> LogitsFn:
    """uint8 ``[N, 28, 28]`` → float32 logits ``[N, 10]`` of ``model`` in inference mode."""

    @tf.function(reduce_retracing=True)
    def logits(images):
        return tf.cast(
            model(to_model_input(images), training=False, return_logits=True), tf.float32
        )

    return lambda images: batched(lambda chunk: logits(tf.constant(chunk)), images, batch_size)
