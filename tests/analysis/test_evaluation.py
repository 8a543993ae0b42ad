"""Confusion matrix, per-class scores and losses against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_research.analysis import metrics as evaluation


def test_confusion_matrix_and_per_class_by_hand():
    labels = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 1])
    summary = evaluation.summarize(labels, np.eye(3)[predicted], num_classes=3)
    np.testing.assert_array_equal(summary["confusion_matrix"], [[1, 1, 0], [1, 2, 0], [0, 1, 0]])
    scores = summary["per_class"]
    assert scores["precision"] == pytest.approx([0.5, 0.5, 0.0])
    assert scores["recall"] == pytest.approx([0.5, 2 / 3, 0.0])
    assert scores["f1"] == pytest.approx([0.5, 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 0.0])
    assert scores["support"] == [2, 3, 1]


def test_summarize_matches_tensorflow_loss_and_accuracy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 10)).astype(np.float32) * 3
    labels = rng.integers(0, 10, size=200)
    summary = evaluation.summarize(labels, logits)
    expected = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    assert summary["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert summary["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert np.sum(summary["confusion_matrix"]) == 200
    np.testing.assert_allclose(evaluation.softmax(logits), tf.nn.softmax(logits), atol=1e-6)
