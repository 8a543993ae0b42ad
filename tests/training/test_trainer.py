"""The tf.function train/eval steps on a tiny learnable problem."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_research.config import ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.data import pipeline as input_pipeline
from mnist_research.errors import NonFiniteLossError
from mnist_research.training.loop import Trainer
from tests.helpers import make_digits


def _trainer(**train_kwargs):
    tf.keras.utils.set_random_seed(0)
    config = ExperimentConfig(
        model=ModelConfig(hidden_units=(64, 32), dropout_rates=(0.1, 0.1)),
        train=TrainConfig(batch_size=32, **train_kwargs),
    )
    return Trainer(config, tf.distribute.get_strategy())


def _iterator(trainer, images, labels, epoch=1):
    train = input_pipeline.TrainInput(images, labels, 32, seed=0)
    return iter(
        trainer.strategy.distribute_datasets_from_function(lambda ctx: train.dataset(epoch, ctx))
    ), train.steps_per_epoch()


def test_loss_halves_and_eval_counts_everything():
    images, labels = make_digits(320)
    trainer = _trainer()
    evaluate = trainer.make_evaluator(input_pipeline.eval_dataset(images, labels, 64))
    before = evaluate()
    assert before.count == 320
    first = None
    for epoch in range(1, 6):
        iterator, steps = _iterator(trainer, images, labels, epoch)
        totals = trainer.train_steps(iterator, steps)
        first = first or totals
        assert totals.count == steps * 32
    assert trainer.step == 5 * 10
    after = evaluate()
    assert after.means()["loss"] < before.means()["loss"] / 2
    assert totals.means()["loss"] < first.means()["loss"] / 2
    assert after.means()["accuracy"] > 0.9


def test_predict_returns_probabilities_matching_eval():
    images, labels = make_digits(100)
    trainer = _trainer()
    probs = tf.nn.softmax(input_pipeline.logits_function(trainer.model, 30)(images)).numpy()
    assert probs.shape == (100, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    totals = trainer.make_evaluator(input_pipeline.eval_dataset(images, labels, 64))()
    assert totals.means()["accuracy"] == pytest.approx((probs.argmax(1) == labels).mean())
    expected_loss = -np.log(probs[np.arange(100), labels]).mean()
    assert totals.means()["loss"] == pytest.approx(expected_loss, rel=1e-4)


def test_validation_and_test_evaluators_share_one_trace():
    # Two datasets of different sizes (each ending in a partial batch): each
    # evaluator counts its own examples, and the second one is not traced again.
    images, labels = make_digits(250)
    trainer = _trainer()
    validate = trainer.make_evaluator(input_pipeline.eval_dataset(images[:150], labels[:150], 64))
    test = trainer.make_evaluator(input_pipeline.eval_dataset(images[150:], labels[150:], 64))
    assert [validate().count, test().count, validate().count] == [150, 100, 150]
    assert trainer._evaluate.experimental_get_tracing_count() == 1


def test_empty_or_infinite_evaluation_dataset_is_refused():
    images, labels = make_digits(10)
    trainer = _trainer()
    with pytest.raises(ValueError, match="empty"):
        trainer.make_evaluator(input_pipeline.eval_dataset(images[:0], labels[:0], 64))
    with pytest.raises(ValueError, match="infinite"):
        trainer.make_evaluator(input_pipeline.eval_dataset(images, labels, 64).repeat())


def test_evaluation_does_not_depend_on_the_eval_batch_size():
    images, labels = make_digits(250)
    trainer = _trainer()
    iterator, steps = _iterator(trainer, images, labels)
    trainer.train_steps(iterator, steps)
    results = [
        trainer.make_evaluator(input_pipeline.eval_dataset(images, labels, size))()
        for size in (32, 100, 2000)
    ]
    assert [r.count for r in results] == [250, 250, 250]
    assert results[0].sums["accuracy"] == results[1].sums["accuracy"] == results[2].sums["accuracy"]
    assert results[1].means()["loss"] == pytest.approx(results[0].means()["loss"], rel=1e-5)
    assert results[2].means()["loss"] == pytest.approx(results[0].means()["loss"], rel=1e-5)


def test_one_iterator_serves_every_epoch_and_must_agree_on_their_steps():
    images, labels = make_digits(320)
    trainer = _trainer()
    train = input_pipeline.TrainInput(images, labels, 32, seed=0)
    with pytest.raises(ValueError, match="hold 10 steps an epoch, the loop takes 9"):
        train.distributed(trainer.strategy, 1, 2, 9)
    batches = train.distributed(trainer.strategy, 1, 2, 10)
    assert trainer.train_steps(batches, 20).count == 20 * 32  # Two whole epochs.
    with pytest.raises(tf.errors.OutOfRangeError):
        trainer.train_steps(batches, 1)  # And no more.


def test_nan_loss_raises_naming_the_step():
    images, labels = make_digits(320)
    trainer = _trainer(learning_rate=1e30)
    iterator, steps = _iterator(trainer, images, labels)
    with pytest.raises(NonFiniteLossError, match=r"NaN or Inf at step \d+"):
        for _ in range(3):
            trainer.train_steps(iterator, 3)


def test_fast_path_matches_plain_path():
    """50 steps per tf.function call vs one call per step: same seed, same results.

    The same ops run in the same order with the same dropout RNG stream, so the
    only room for a difference is float rounding in how the sums are accumulated.
    """
    images, labels = make_digits(640)
    results = {}
    for steps_per_loop in (1, 7):
        tf.keras.utils.set_random_seed(11)
        config = ExperimentConfig(
            train=TrainConfig(batch_size=32, seed=11, steps_per_loop=steps_per_loop)
        )
        trainer = Trainer(config, tf.distribute.get_strategy())
        losses = []
        for epoch in range(1, 3):
            iterator, steps = _iterator(trainer, images, labels, epoch)
            done = 0
            while done < steps:
                n = min(steps_per_loop, steps - done)
                losses.append(trainer.train_steps(iterator, n).sums["loss"])
                done += n
        results[steps_per_loop] = (sum(losses), [v.numpy() for v in trainer.model.variables])
    assert results[1][0] == pytest.approx(results[7][0], rel=1e-5)
    for a, b in zip(results[1][1], results[7][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_xla_and_plain_steps_train_equally_well():
    """The XLA-compiled step and the plain one, same seed: the same accuracy within noise.

    Not bit-identical: XLA fuses and orders float operations differently, and its Philox
    kernel draws a different (equally distributed) dropout mask stream for the same seed.
    """
    images, labels = make_digits(640, seed=4)
    test_images, test_labels = make_digits(320, seed=5)
    results = {}
    for jit in (True, False):
        tf.keras.utils.set_random_seed(11)
        config = ExperimentConfig(train=TrainConfig(batch_size=32, seed=11, jit_compile=jit))
        trainer = Trainer(config, tf.distribute.get_strategy())
        assert trainer.jit_compile == ("step" if jit else "none")
        for epoch in range(1, 4):
            iterator, steps = _iterator(trainer, images, labels, epoch)
            trainer.train_steps(iterator, steps)
        results[jit] = trainer.make_evaluator(
            input_pipeline.eval_dataset(test_images, test_labels, 64)
        )()
    assert results[True].means()["accuracy"] > 0.9 and results[False].means()["accuracy"] > 0.9
    assert abs(results[True].means()["accuracy"] - results[False].means()["accuracy"]) <= 0.03
    assert results[True].means()["loss"] == pytest.approx(results[False].means()["loss"], rel=0.3)


def test_label_smoothing_trains_on_smoothed_targets_and_logs_the_true_loss():
    """With s > 0 the gradient is of cross-entropy against (1 - s) * one_hot + s / 10; the
    logged loss stays cross-entropy against the labels (comparable with validation)."""
    images, labels = make_digits(64)
    losses, kernels = {}, {}
    for smoothing in (0.0, 0.5):
        tf.keras.utils.set_random_seed(0)
        config = ExperimentConfig(
            train=TrainConfig(batch_size=64, label_smoothing=smoothing, jit_compile=False)
        )
        trainer = Trainer(config, tf.distribute.get_strategy())
        train = input_pipeline.TrainInput(images, labels, 64, seed=0)
        iterator = iter(
            trainer.strategy.distribute_datasets_from_function(
                lambda ctx, train=train: train.dataset(1, ctx)
            )
        )
        losses[smoothing] = trainer.train_steps(iterator, 1).means()["loss"]
        kernels[smoothing] = trainer.model.trainable_variables[0].numpy()
    # The first step starts from the same weights: the same logged loss, another update.
    assert np.isclose(losses[0.0], losses[0.5])
    assert not np.allclose(kernels[0.0], kernels[0.5])
