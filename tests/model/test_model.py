"""Model shapes, parameter count, block order, and a full checkpoint round-trip."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_research.config import ModelConfig
from mnist_research.model import registry
from tests.helpers import layer_kinds


def _model(**kwargs):
    return registry.create(ModelConfig(**kwargs))


def test_outputs_are_probabilities_and_logits():
    model = _model()
    x = tf.random.uniform((5, 784))
    probs = model(x).numpy()
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    logits = model(x, return_logits=True)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probs, rtol=1e-5, atol=1e-6)


def test_parameter_count_matches_the_seed_architecture():
    model = _model()
    # Dense without bias (BN follows) + BN gamma/beta/mean/var per block, then the head.
    expected = 0
    for fan_in, units in ((784, 256), (256, 128), (128, 64)):
        expected += fan_in * units + 4 * units
    expected += 64 * 10 + 10
    assert model.count_params() == expected
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert trainable == expected - 2 * (256 + 128 + 64)


def test_block_order_is_dense_bn_relu_dropout():
    model = _model()
    assert [b.dense.units for b in model.blocks] == [256, 128, 64]
    assert [b.dropout.rate for b in model.blocks] == pytest.approx([0.3, 0.3, 0.2])
    for block in model.blocks:
        assert layer_kinds(block) == ["Dense", "BatchNormalization", "ReLU", "StatelessDropout"]


def test_no_batchnorm_and_custom_widths():
    model = _model(hidden_units=(32, 16), dropout_rates=(0.1, 0.0), batch_norm=False)
    assert layer_kinds(model.blocks[0]) == ["Dense", "ReLU", "StatelessDropout"]
    assert model.count_params() == 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10


def test_dropout_only_in_training():
    model = _model()
    x = tf.random.uniform((64, 784))
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    assert not np.allclose(model(x, training=True).numpy(), model(x, training=True).numpy())


def test_checkpoint_round_trip_restores_every_variable(tmp_path):
    source = _model()
    optimizer = tf.keras.optimizers.Adam()
    optimizer.build(source.trainable_variables)
    x = tf.random.uniform((32, 784))
    y = tf.one_hot(tf.range(32) % 10, 10)
    for _ in range(3):  # Move weights, BN moving statistics and Adam slots off their init.
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(
                    y, source(x, training=True, return_logits=True)
                )
            )
        grads = tape.gradient(loss, source.trainable_variables)
        optimizer.apply_gradients(zip(grads, source.trainable_variables))
    path = tf.train.Checkpoint(optimizer=optimizer, model=source).write(str(tmp_path / "ckpt"))

    target = _model()
    target_opt = tf.keras.optimizers.Adam()
    target_opt.build(target.trainable_variables)
    tf.train.Checkpoint(optimizer=target_opt, model=target).read(path).assert_consumed()

    # 5 per block (kernel, BN gamma/beta/moving mean/variance) and the head's 2; dropout
    # holds no state (its masks are a function of the seed and the step).
    assert len(source.variables) == len(target.variables) == 3 * 5 + 2
    moving = [v for v in source.variables if "moving" in v.path]
    assert len(moving) == 6 and not np.allclose(moving[0].numpy(), 0.0)
    for a, b in zip(source.variables, target.variables):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(optimizer.variables, target_opt.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(source(x).numpy(), target(x).numpy(), rtol=1e-6)
