"""Every model family: registry, block order, checkpoint/export round-trips, uint8 serving."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mnist_research import config as config_lib
from mnist_research.config import ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.data import pipeline
from mnist_research.data.pipeline import to_model_input
from mnist_research.inference import export as export_lib
from mnist_research.inference import finished_run
from mnist_research.model import registry
from mnist_research.training.loop import Trainer
from tests.helpers import layer_kinds, make_digits

# Small sizes for each part a family may read, so the tests stay fast on 2 CPU cores.
_SMALL_PARTS = {
    "dense": dict(hidden_units=(32,), dropout_rates=(0.2,)),
    "conv": dict(conv_filters=(8, 16), conv_dropout_rates=(0.1, 0.1)),
}


def _small(name: str) -> ModelConfig:
    """A small member of the family ``name``: only the parts its registry entry reads are set."""
    reads = config_lib.MODEL_FAMILIES[name].reads
    sizes = {
        k: v for part, values in _SMALL_PARTS.items() if part in reads for k, v in values.items()
    }
    return ModelConfig(family=name, **sizes)


# Every registered family, asked of the registry rather than assumed.
SMALL = {name: _small(name) for name in config_lib.MODEL_FAMILIES}


@pytest.fixture(scope="module", params=sorted(SMALL))
def trained(request):
    """(family, model, optimizer, images): a few Adam steps from init, BN statistics moved."""
    return (request.param, *_trained(request.param))


def _trained(family, steps=3):
    tf.keras.utils.set_random_seed(0)
    model = registry.create(SMALL[family])
    optimizer = tf.keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    images, labels = make_digits(32)
    x = to_model_input(images)
    y = tf.one_hot(labels, 10)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(
                    y, model(x, training=True, return_logits=True)
                )
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return model, optimizer, images


def test_registry_covers_every_configurable_family():
    assert set(registry.FAMILIES) == set(config_lib.MODEL_FAMILIES)
    for name in config_lib.MODEL_FAMILIES:
        model = registry.create(SMALL[name])
        assert type(model) is registry.FAMILIES[name]()


def test_registry_entries_say_what_each_family_has():
    for name in registry.FAMILIES:
        reads = config_lib.MODEL_FAMILIES[name].reads
        model = registry.create(SMALL[name])
        has_bn = any("batch_norm" in v.path for v in model.variables)
        assert has_bn == ("batch_norm" in reads), name
        has_conv = any(len(v.shape) == 4 for v in model.trainable_variables)
        assert has_conv == ("conv" in reads), name


def test_cnn_blocks_are_conv_bn_relu_pool_dropout():
    stride = registry.create(SMALL["cnn"])
    blocks = stride.conv_blocks + stride.dense_blocks
    kinds = [layer_kinds(block) for block in blocks]
    assert kinds == [["Conv2D", "BatchNormalization", "ReLU", "StatelessDropout"]] * 2 + [
        ["Dense", "BatchNormalization", "ReLU", "StatelessDropout"]
    ]
    assert [block.conv.strides for block in stride.conv_blocks] == [(2, 2)] * 2
    pooled = registry.create(
        ModelConfig(
            family="cnn",
            conv_filters=(4,),
            conv_dropout_rates=(0.0,),
            conv_pooling="max",
            hidden_units=(8,),
            dropout_rates=(0.0,),
            batch_norm=False,
        )
    )
    assert layer_kinds(pooled.conv_blocks[0]) == [
        "Conv2D",
        "ReLU",
        "MaxPooling2D",
        "StatelessDropout",
    ]
    # 28x28 -> 14x14 after one halving: the dense block sees 14 * 14 * 4 features.
    assert pooled.dense_blocks[0].dense.kernel.shape == (14 * 14 * 4, 8)


def test_cnn_takes_the_flat_model_input():
    model = registry.create(SMALL["cnn"])
    probs = model(tf.random.uniform((5, 784))).numpy()
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # Two stride-2 halvings: 28 -> 14 -> 7, so the dense block sees 7 * 7 * 16 features.
    assert model.dense_blocks[0].dense.kernel.shape == (7 * 7 * 16, 32)


@pytest.mark.parametrize("family", sorted(SMALL))
def test_loss_halves_on_a_tiny_learnable_set(family):
    tf.keras.utils.set_random_seed(0)
    config = ExperimentConfig(model=SMALL[family], train=TrainConfig(batch_size=32))
    trainer = Trainer(config, tf.distribute.get_strategy())
    images, labels = make_digits(320)
    train = pipeline.TrainInput(images, labels, 32, seed=0)
    losses = []
    for epoch in range(1, 6):
        iterator = iter(
            trainer.strategy.distribute_datasets_from_function(
                lambda ctx, epoch=epoch: train.dataset(epoch, ctx)
            )
        )
        losses.append(trainer.train_steps(iterator, train.steps_per_epoch()).means()["loss"])
    assert losses[-1] < losses[0] / 2, losses


def test_checkpoint_round_trip_restores_every_variable(trained, tmp_path):
    family, source, optimizer, images = trained
    path = tf.train.Checkpoint(optimizer=optimizer, model=source).write(str(tmp_path / "ckpt"))
    target = registry.create(SMALL[family])
    target_opt = tf.keras.optimizers.Adam()
    target_opt.build(target.trainable_variables)
    tf.train.Checkpoint(optimizer=target_opt, model=target).read(path).assert_consumed()
    moving = [v for v in source.variables if "moving" in v.path]
    # BN's moving statistics moved and came back
    if "batch_norm" in config_lib.MODEL_FAMILIES[family].reads:
        assert moving and not np.allclose(moving[0].numpy(), 0.0)
    else:
        assert not moving
    assert len(source.variables) == len(target.variables)
    for a, b in zip(source.variables, target.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(optimizer.variables, target_opt.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = to_model_input(images)
    np.testing.assert_allclose(source(x).numpy(), target(x).numpy(), rtol=1e-6)


def test_export_serves_uint8_and_keras_file_keeps_every_variable(trained, tmp_path):
    _, model, _, images = trained
    expected = model(to_model_input(images), training=False, return_logits=True).numpy()
    export_dir = export_lib.export_saved_model(model, str(tmp_path / "export"))
    served = finished_run.ExportedClassifier(export_dir).logits(images)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)

    keras_path = export_lib.save_keras(model, str(tmp_path / "model.keras"))
    loaded = tf.keras.models.load_model(keras_path)
    assert type(loaded) is type(model)
    assert len(loaded.variables) == len(model.variables)
    for a, b in zip(model.variables, loaded.variables):
        if "seed_generator" not in a.path:  # Dropout RNG state, which .keras does not keep.
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    np.testing.assert_allclose(
        loaded(to_model_input(images), return_logits=True).numpy(), expected, rtol=1e-5, atol=1e-5
    )
    assert os.path.getsize(keras_path) > 0


def test_the_linear_model_s_saved_config_says_what_it_is():
    """No hidden blocks and no BatchNormalization, as config.json records for --model=linear."""
    model = registry.create(_small("linear"))
    saved = model.get_config()
    assert (saved["hidden_units"], saved["dropout_rates"], saved["batch_norm"]) == ([], [], False)
    assert not any("moving" in v.path for v in model.variables)  # no BN statistics
