"""FusedAdam applies exactly Keras Adam's update rule."""

import numpy as np
import tensorflow as tf

from mnist_research.training.optimizers import FusedAdam


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
