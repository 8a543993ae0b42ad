"""StatelessDropout: the configured fraction, a pure function of (seed, step, layer, replica)."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_research.config import ModelConfig
from mnist_research.model import registry
from mnist_research.model.mlp import StatelessDropout, replica_seed


def _mask(layer, seed, shape=(1000, 1000)):
    return layer(tf.ones(shape), training=True, seed=tf.constant(seed, tf.int64)).numpy() != 0


@pytest.mark.parametrize("rate", [0.2, 0.3, 0.5])
def test_drops_the_configured_fraction_and_rescales(rate):
    out = StatelessDropout(rate)(
        tf.ones((1000, 1000)), training=True, seed=tf.constant([42, 1], tf.int64)
    ).numpy()
    assert abs((out == 0).mean() - rate) < 0.01
    np.testing.assert_allclose(out[out != 0], 1.0 / (1.0 - rate), rtol=1e-6)
    assert out.mean() == pytest.approx(1.0, abs=0.01)  # expectation preserved


def test_identity_at_inference_and_at_rate_zero():
    x = tf.random.uniform((64, 32))
    assert StatelessDropout(0.3)(x, training=False) is x
    np.testing.assert_array_equal(StatelessDropout(0.3)(x).numpy(), x.numpy())
    np.testing.assert_array_equal(
        StatelessDropout(0.0)(x, training=True, seed=tf.constant([1, 2], tf.int64)).numpy(),
        x.numpy(),
    )


def test_mask_is_a_pure_function_of_the_seed():
    layer = StatelessDropout(0.3)
    same = [_mask(layer, [42, 5]) for _ in range(2)]
    np.testing.assert_array_equal(same[0], same[1])  # a resumed step replays its mask
    assert StatelessDropout(0.3)(tf.ones((1, 10))).shape == (1, 10)  # no seed needed


def test_masks_differ_across_steps_layers_and_replicas():
    def overlap(a, b):
        return (a == b).mean()

    base = _mask(StatelessDropout(0.3, salt=0), [42, 5])
    other_step = _mask(StatelessDropout(0.3, salt=0), [42, 6])
    other_layer = _mask(StatelessDropout(0.3, salt=1), [42, 5])
    other_run = _mask(StatelessDropout(0.3, salt=0), [43, 5])
    # Independent masks at rate 0.3 agree on 0.7^2 + 0.3^2 = 58 % of units.
    for mask in (other_step, other_layer, other_run):
        assert overlap(base, mask) == pytest.approx(0.58, abs=0.01)
    # The replica id is folded into the step's seed (0 outside a replica function).
    seed = tf.constant([42, 5], tf.int64)
    np.testing.assert_array_equal(
        replica_seed(seed).numpy(),
        tf.random.experimental.stateless_fold_in(
            seed, tf.constant(0, tf.int64), alg="philox"
        ).numpy(),
    )


def test_xla_compiled_dropout_keeps_the_fraction_and_is_deterministic():
    layer = StatelessDropout(0.3)
    compiled = tf.function(lambda x, s: layer(x, training=True, seed=s), jit_compile=True)
    seed = tf.constant([42, 9], tf.int64)
    a = compiled(tf.ones((1000, 1000)), seed).numpy()
    b = compiled(tf.ones((1000, 1000)), seed).numpy()
    np.testing.assert_array_equal(a, b)
    assert abs((a == 0).mean() - 0.3) < 0.01


def test_model_dropout_seed_replays_and_plain_calls_vary():
    model = registry.create(ModelConfig())
    x = tf.random.uniform((256, 784))
    seeded = [model(x, training=True, dropout_seed=[7, 3]).numpy() for _ in range(2)]
    np.testing.assert_array_equal(seeded[0], seeded[1])
    assert not np.allclose(seeded[0], model(x, training=True, dropout_seed=[7, 4]).numpy())
    # Plain Keras use: no seed, fresh masks each call, none of them stored in the model.
    assert not np.allclose(model(x, training=True).numpy(), model(x, training=True).numpy())
    assert not any("seed" in v.path for v in model.variables)


def test_plain_calls_repeat_under_set_random_seed():
    model = registry.create(ModelConfig())
    x = tf.random.uniform((32, 784))
    runs = []
    for _ in range(2):
        tf.keras.utils.set_random_seed(5)
        runs.append(model(x, training=True).numpy())
    np.testing.assert_array_equal(runs[0], runs[1])
