"""tf.data pipelines: batch shapes, per-epoch seeded shuffling, complete evaluation."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_research.data import augment
from mnist_research.data import pipeline as input_pipeline
from mnist_research.errors import ConfigError
from tests.helpers import make_digits


@pytest.fixture(scope="module")
def digits():
    return make_digits(300)


def _labels(ds):
    return np.concatenate([y.numpy().argmax(1) for _, y in ds])


def test_train_batches_are_preprocessed_and_full(digits):
    train = input_pipeline.TrainInput(*digits, global_batch_size=64, seed=1)
    assert train.steps_per_epoch() == 300 // 64
    batches = list(train.dataset(epoch=1))
    assert len(batches) == 4
    x, y = batches[0]
    assert x.shape == (64, 784) and x.dtype == tf.float32
    assert y.shape == (64, 10)
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0


def test_the_training_pipeline_runs_without_the_autotuner(digits):
    # Its background thread made deleting a run's training iterator wait 2-4.5 s.
    train = input_pipeline.TrainInput(*digits, global_batch_size=64, seed=1)
    assert train.dataset(epoch=1).options().autotune.enabled is False


def test_shuffle_is_seeded_per_epoch(digits):
    train = input_pipeline.TrainInput(*digits, global_batch_size=50, seed=1)
    again = input_pipeline.TrainInput(*digits, global_batch_size=50, seed=1)
    epoch1 = _labels(train.dataset(1))
    np.testing.assert_array_equal(epoch1, _labels(again.dataset(1)))  # Resume sees the same.
    np.testing.assert_array_equal(epoch1, _labels(train.dataset(1)))
    assert not np.array_equal(epoch1, _labels(train.dataset(2)))  # Reshuffled every epoch.
    assert sorted(epoch1) == sorted(digits[1])  # A permutation of all 300.
    other_seed = input_pipeline.TrainInput(*digits, global_batch_size=50, seed=2)
    assert not np.array_equal(epoch1, _labels(other_seed.dataset(1)))


class _CountingInput(input_pipeline.TrainInput):
    """Records every epoch whose order was drawn."""

    drawn: list[int]

    def permutation(self, epoch):
        self.drawn.append(epoch)
        return super().permutation(epoch)


def test_an_epochs_order_is_drawn_only_when_the_pipeline_reaches_it(digits):
    train = _CountingInput(*digits, global_batch_size=64, seed=1)
    train.drawn = []
    ds = train.dataset(1, last_epoch=50_000)  # --epochs=50000: nothing drawn up front
    first_two = _batches(ds.take(2 * train.steps_per_epoch()))
    assert len(train.drawn) < 100 and train.drawn[:2] == [1, 2]  # and what prefetch reached
    reference = input_pipeline.TrainInput(*digits, global_batch_size=64, seed=1)
    expected = [b for epoch in (1, 2) for b in _batches(reference.dataset(epoch))]
    for (x, y), (x_expected, y_expected) in zip(first_two, expected, strict=True):
        np.testing.assert_array_equal(x, x_expected)
        np.testing.assert_array_equal(y, y_expected)


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


@pytest.mark.parametrize("augment", [False, True])
def test_one_dataset_of_several_epochs_is_those_epochs_back_to_back(digits, augment):
    """A run builds one dataset for its remaining epochs: the same batches as epoch by epoch."""
    train = input_pipeline.TrainInput(*digits, global_batch_size=64, seed=1, augment=augment)
    joined = _batches(train.dataset(2, last_epoch=4))
    separate = [b for epoch in (2, 3, 4) for b in _batches(train.dataset(epoch))]
    assert len(joined) == len(separate) == 3 * train.steps_per_epoch()
    for (x, y), (x_expected, y_expected) in zip(joined, separate):
        np.testing.assert_array_equal(x, x_expected)
        np.testing.assert_array_equal(y, y_expected)


@pytest.mark.parametrize("pipelines, pipeline_id, replicas", [(1, 0, 2), (2, 1, 4)])
def test_each_epoch_holds_one_batch_per_step_and_local_replica(
    digits, pipelines, pipeline_id, replicas
):
    """Several replicas per input pipeline: an epoch is steps x local replicas batches.

    Expected batches are computed here from the documented rule: pipeline ``p`` of
    ``W`` takes every W-th example of the epoch's permutation, in order, and each
    step takes one per-replica batch per local replica; nothing is left over, so
    the next epoch starts at its own permutation.
    """
    train = input_pipeline.TrainInput(*digits, global_batch_size=64, seed=1, augment=True)
    context = tf.distribute.InputContext(
        num_input_pipelines=pipelines, input_pipeline_id=pipeline_id, num_replicas_in_sync=replicas
    )
    per_replica = 64 // replicas
    per_epoch = train.steps_per_epoch(pipelines) * (replicas // pipelines)
    batches = _batches(train.dataset(1, context, last_epoch=2))
    assert len(batches) == 2 * per_epoch
    for epoch in (1, 2):
        shard = train.permutation(epoch)[pipeline_id::pipelines]
        for i in range(per_epoch):
            x, y = batches[(epoch - 1) * per_epoch + i]
            index = shard[i * per_replica : (i + 1) * per_replica]
            np.testing.assert_array_equal(y.argmax(1), digits[1][index])
            seed = augment.batch_seed(1, epoch, pipeline_id, i)
            expected = augment.augment_batch(tf.constant(digits[0][index]), seed)
            np.testing.assert_allclose(x, expected.numpy().reshape(-1, 784) / 255.0, atol=1e-6)


def test_eval_dataset_counts_every_example_once(digits):
    ds = input_pipeline.eval_dataset(*digits, batch_size=128)
    sizes = [int(x.shape[0]) for x, _ in ds]
    assert sizes == [128, 128, 44]
    np.testing.assert_array_equal(_labels(ds), digits[1])


def test_batch_larger_than_data_is_rejected(digits):
    with pytest.raises(ConfigError, match="larger than the 300 training examples"):
        input_pipeline.TrainInput(*digits, global_batch_size=512, seed=0)


def test_steps_per_epoch_is_equal_across_workers(digits):
    train = input_pipeline.TrainInput(*digits, global_batch_size=64, seed=1)
    assert train.steps_per_epoch(num_input_pipelines=2) == 150 // 32
