"""The optimizers: FusedAdam is Keras Adam, each registry entry builds and trains, clipping."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_research.config import OPTIMIZERS, ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.data import pipeline as input_pipeline
from mnist_research.model import registry
from mnist_research.training import loop, optimizers
from mnist_research.training.loop import Trainer
from mnist_research.training.optimizers import FusedAdam
from tests.helpers import check_reports, early, make_digits, start_check_script


def _train(optimizer_cls, steps=60):
    tf.keras.utils.set_random_seed(3)
    w = tf.Variable(tf.random.normal((16, 4)))
    b = tf.Variable(tf.zeros((4,)))
    optimizer = optimizer_cls(learning_rate=0.05)
    optimizer.build([w, b])
    x = tf.random.normal((32, 16))
    y = tf.random.normal((32, 4))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((x @ w + b - y) ** 2)
        grads = tape.gradient(loss, [w, b])
        optimizer.apply_gradients(zip(grads, [w, b]))
        return loss

    losses = [float(step()) for _ in range(steps)]
    return losses, [w.numpy(), b.numpy()], [v.numpy() for v in optimizer.variables]


def test_fused_adam_matches_keras_adam():
    # Same math, different float32 operation order: differences stay ~1e-5 relative.
    fused_losses, fused_vars, fused_slots = _train(FusedAdam)
    keras_losses, keras_vars, keras_slots = _train(tf.keras.optimizers.Adam)
    assert fused_losses[-1] < fused_losses[0] / 2
    np.testing.assert_allclose(fused_losses, keras_losses, rtol=1e-4)
    for a, b in zip(fused_vars + fused_slots, keras_vars + keras_slots):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_every_registry_entry_has_a_builder():
    assert list(optimizers.BUILDERS) == list(OPTIMIZERS)


@pytest.mark.parametrize(
    "train",
    [TrainConfig(optimizer=name) for name in OPTIMIZERS]
    + [
        TrainConfig(fused_adam=False),
        TrainConfig(optimizer="adamw", weight_decay=0.01),
        TrainConfig(optimizer="sgd", momentum=0.9),
    ],
)
def test_the_slots_the_memory_check_counts_are_the_ones_keras_creates(train):
    model = registry.create(ModelConfig(hidden_units=(7, 5), dropout_rates=(0, 0)))
    optimizer = optimizers.build(train, steps_per_epoch=1)
    optimizer.build(model.trainable_variables)
    weights = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    # Scalars (iterations, the learning rate) are not per-variable slots.
    slot_numbers = sum(int(np.prod(v.shape)) for v in optimizer.variables if len(v.shape))
    assert slot_numbers == OPTIMIZERS[train.optimizer].slots(train) * weights


def test_clipping_one_replica_is_clip_by_global_norm():
    grads = [tf.constant([3.0, 4.0]), tf.constant([[12.0]])]  # global norm 13
    for clip_norm in (1.0, 13.0, 50.0):
        expected, _ = tf.clip_by_global_norm(grads, clip_norm)
        for got, want in zip(loop.clip_by_summed_norm(grads, clip_norm), expected):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    # A non-finite norm leaves the gradients for the loss-scale optimizer to skip.
    bad = [tf.constant([np.inf, 1.0])]
    np.testing.assert_array_equal(loop.clip_by_summed_norm(bad, 1.0)[0], bad[0])


@pytest.mark.parametrize(
    "train",
    [
        dict(),
        dict(optimizer="adamw", weight_decay=1e-4),
        dict(optimizer="sgd", learning_rate=0.05, momentum=0.9),
        dict(optimizer="sgd", learning_rate=0.1, clip_global_norm=1.0),
    ],
    ids=["adam", "adamw", "sgd_momentum", "sgd_clipped"],
)
def test_each_optimizer_halves_the_loss_of_a_tiny_problem(train):
    tf.keras.utils.set_random_seed(0)
    images, labels = make_digits(320)
    config = ExperimentConfig(
        model=ModelConfig(hidden_units=(64, 32), dropout_rates=(0.1, 0.1)),
        train=TrainConfig(batch_size=32, **train),
    )
    trainer = Trainer(config, tf.distribute.get_strategy())
    data = input_pipeline.TrainInput(images, labels, 32, seed=0)
    losses = []
    for epoch in range(1, 6):
        iterator = iter(data.dataset(epoch))
        losses.append(trainer.train_steps(iterator, data.steps_per_epoch()).means()["loss"])
    assert losses[-1] < losses[0] / 2, losses


@early
def early_test_clipping_on_two_replicas_clips_the_summed_gradient(npz_dir, folder, environ):
    return start_check_script("clip_check.py", environ)


@pytest.mark.slow
def test_clipping_on_two_replicas_clips_the_summed_gradient(early_process):
    reports = check_reports(early_process[1])
    report = reports[0]
    assert report["replicas"] == 2 and report["replica_diffs"] == [0.0, 0.0]
    # float32 rounding of a step of size ~3 (measured: 2.4e-7 each).
    assert report["step_size"] > 1.0
    assert report["ours_vs_by_hand"] < 1e-5
    assert report["loss_scaled_vs_by_hand"] < 1e-5
    assert report["above_the_norm_is_unclipped"] < 1e-5
    # Keras's global_clipnorm clips each replica's share before the sum (measured: 1.8).
    assert report["keras_global_clipnorm_vs_by_hand"] > 0.1
