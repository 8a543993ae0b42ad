"""Random rotation, zoom and translation of uint8 training batches, seeded statelessly.

Each image gets its own affine transform (rotation about the image centre,
zoom about the centre, then a shift), drawn with ``tf.random.stateless_uniform``
from a seed the caller derives from ``(run seed, epoch, batch)``: a resumed run
replays exactly the augmented batches an uninterrupted run would have seen,
with no random-generator state to checkpoint. Pixels are resampled bilinearly
(``ImageProjectiveTransformV3``, the kernel Keras's ``RandomRotation`` and
``RandomZoom`` use), uncovered pixels are black (0, the MNIST background),
and the result is rounded back to uint8, so an augmented batch goes through
the same ``to_model_input`` as any other.
"""

from __future__ import annotations

import math

import tensorflow as tf

from mnist_research.data.pipeline import IMAGE_SHAPE

# The ranges each transform is drawn from, uniformly (about what the Keras MNIST
# augmentation examples use: ±10 % of the width, ±10° , ±10 % zoom).
MAX_ROTATION_DEGREES = 10.0
MAX_ZOOM = 0.1
MAX_SHIFT_PIXELS = 2.0


def transforms(batch_size, seed: tf.Tensor) -> tf.Tensor:
    """``[B, 8]`` projective transforms (output → input coordinates), one per image.

    Each maps an output pixel back to where it comes from in the input: undo
    the shift, then the zoom and rotation about the centre.

    Args:
      batch_size: number of transforms.
      seed: a stateless seed, int ``[2]``.
    """
    params = tf.random.stateless_uniform([batch_size, 4], seed, minval=-1.0, maxval=1.0)
    angle = params[:, 0] * (MAX_ROTATION_DEGREES * math.pi / 180.0)
    scale = 1.0 + params[:, 1] * MAX_ZOOM
    shift_x = params[:, 2] * MAX_SHIFT_PIXELS
    shift_y = params[:, 3] * MAX_SHIFT_PIXELS
    centre_y, centre_x = (IMAGE_SHAPE[0] - 1) / 2.0, (IMAGE_SHAPE[1] - 1) / 2.0
    a0, a1 = tf.cos(angle) / scale, tf.sin(angle) / scale
    b0, b1 = -tf.sin(angle) / scale, tf.cos(angle) / scale
    source_x, source_y = centre_x + shift_x, centre_y + shift_y
    a2 = centre_x - a0 * source_x - a1 * source_y
    b2 = centre_y - b0 * source_x - b1 * source_y
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def augment_batch(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """uint8 ``[B, 28, 28]`` → uint8 ``[B, 28, 28]``, each image randomly transformed.

    Args:
      images: the batch.
      seed: a stateless seed, int ``[2]``; the same seed gives the same batch.
    """
    batch = tf.cast(images, tf.float32)[..., tf.newaxis]
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=batch,
        transforms=transforms(tf.shape(images)[0], seed),
        output_shape=tf.constant(IMAGE_SHAPE, tf.int32),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return tf.cast(tf.clip_by_value(tf.round(moved[..., 0]), 0.0, 255.0), tf.uint8)


def batch_seed(
    seed: int, epoch: int | tf.Tensor, pipeline_id: int, batch_index: tf.Tensor
) -> tf.Tensor:
    """The stateless seed of one batch: a pure function of its four coordinates."""
    base = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    per_pipeline = tf.random.experimental.stateless_fold_in(base, pipeline_id)
    return tf.random.experimental.stateless_fold_in(per_pipeline, tf.cast(batch_index, tf.int64))
