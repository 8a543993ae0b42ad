"""Augmentation: seeded per (seed, epoch), changes training images only, keeps labels."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_research.data import augment, pipeline
from mnist_research.data.pipeline import to_model_input
from tests.helpers import make_digits


@pytest.fixture(scope="module")
def digits():
    return make_digits(256)


def _epoch(train, epoch):
    batches = list(train.dataset(epoch))
    return (
        np.concatenate([x.numpy() for x, _ in batches]),
        np.concatenate([y.numpy().argmax(1) for _, y in batches]),
    )


def test_augmented_batches_are_seeded_per_seed_and_epoch(digits):
    train = pipeline.TrainInput(*digits, global_batch_size=64, seed=1, augment=True)
    resumed = pipeline.TrainInput(*digits, global_batch_size=64, seed=1, augment=True)
    x1, y1 = _epoch(train, 1)
    x1_again, y1_again = _epoch(resumed, 1)  # A resumed run rebuilds its input.
    np.testing.assert_array_equal(x1, x1_again)
    np.testing.assert_array_equal(y1, y1_again)
    x2, _ = _epoch(train, 2)
    assert not np.array_equal(x1, x2)
    other_seed, _ = _epoch(pipeline.TrainInput(*digits, 64, seed=2, augment=True), 1)
    assert not np.array_equal(x1, other_seed)


def test_augmentation_changes_images_but_not_labels_or_order(digits):
    plain = pipeline.TrainInput(*digits, global_batch_size=64, seed=1)
    augmented = pipeline.TrainInput(*digits, global_batch_size=64, seed=1, augment=True)
    x_plain, y_plain = _epoch(plain, 1)
    x_aug, y_aug = _epoch(augmented, 1)
    np.testing.assert_array_equal(y_plain, y_aug)  # Same examples, same order.
    assert x_aug.shape == x_plain.shape and x_aug.dtype == np.float32
    changed = np.abs(x_aug - x_plain).max(axis=1) > 0
    assert changed.mean() > 0.95
    # Still images of the same digits: the same amount of ink, give or take the zoom.
    ratio = x_aug.sum(axis=1) / x_plain.sum(axis=1)
    assert 0.7 < ratio.min() and ratio.max() < 1.4
    # Each value is a uint8 pixel / 255: augmentation happens before preprocessing.
    np.testing.assert_allclose(x_aug * 255, np.round(x_aug * 255), atol=1e-3)


def _centre_of_mass(images):
    rows, cols = np.mgrid[0:28, 0:28]
    mass = images.astype(np.float64).sum(axis=(1, 2))
    return np.stack(
        [(images * rows).sum(axis=(1, 2)) / mass, (images * cols).sum(axis=(1, 2)) / mass], axis=1
    )


def _blobs(count=64):
    images = np.zeros((count, 28, 28), np.uint8)
    images[:, 11:17, 10:18] = 220  # Centred on (13.5, 13.5), the image centre.
    return images


def test_zero_ranges_give_the_identity(monkeypatch):
    for name in ("MAX_ROTATION_DEGREES", "MAX_ZOOM", "MAX_SHIFT_PIXELS"):
        monkeypatch.setattr(augment, name, 0.0)
    images, _ = make_digits(16)
    out = augment.augment_batch(tf.constant(images), tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(out, images)


def test_rotation_and_zoom_keep_the_centre_and_shifts_stay_in_range(monkeypatch):
    seed = tf.constant([5, 6], tf.int64)
    blobs = _blobs()
    monkeypatch.setattr(augment, "MAX_SHIFT_PIXELS", 0.0)
    turned = augment.augment_batch(tf.constant(blobs), seed).numpy()
    assert not np.array_equal(turned, blobs)
    np.testing.assert_allclose(_centre_of_mass(turned), 13.5, atol=0.1)

    monkeypatch.setattr(augment, "MAX_SHIFT_PIXELS", 2.0)
    for name in ("MAX_ROTATION_DEGREES", "MAX_ZOOM"):
        monkeypatch.setattr(augment, name, 0.0)
    shifted = augment.augment_batch(tf.constant(blobs), seed).numpy()
    offsets = _centre_of_mass(shifted) - 13.5
    assert np.abs(offsets).max() <= 2.0 + 0.05
    assert np.abs(offsets).max() > 1.5  # The range is used, not just a rounding wobble.


def test_drawn_rotations_and_zooms_stay_in_range():
    t = augment.transforms(1000, tf.constant([3, 4], tf.int64)).numpy()
    scale = 1.0 / np.hypot(t[:, 0], t[:, 1])
    assert np.all(np.abs(scale - 1) <= augment.MAX_ZOOM + 1e-6)
    angle = np.degrees(np.arctan2(t[:, 1], t[:, 0]))
    assert np.all(np.abs(angle) <= augment.MAX_ROTATION_DEGREES + 1e-4)
    assert np.abs(angle).max() > 0.8 * augment.MAX_ROTATION_DEGREES


def test_eval_images_are_never_augmented(digits):
    images, labels = digits
    batches = list(pipeline.eval_dataset(images, labels, 100))
    x = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_array_equal(x, to_model_input(images).numpy())
