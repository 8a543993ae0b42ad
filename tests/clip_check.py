"""Run as a script (devices must be configured before any TF op): one SGD step (rate 1) on 2
mirrored replicas of 2 logical CPUs, with the gradient clipped by its global norm, against
the summed gradient clipped by hand on one replica; prints a JSON report.

Each replica holds half of a 16-example batch, its loss scaled by the global batch, so the
cross-replica sum of the replicas' gradients is the whole batch's gradient.
"""

import json
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, sys.argv[1])  # the repository root

from mnist_research import config as config_lib
from mnist_research.training import devices
from mnist_research.training.loop import apply_gradients

devices.configure_devices(config_lib.DistributeConfig(strategy="mirrored", num_cpu_devices=2))

rng = np.random.default_rng(0)
X = rng.normal(size=(16, 8)).astype(np.float32)
Y = rng.normal(size=(16, 3)).astype(np.float32)
W0 = rng.normal(size=(8, 3)).astype(np.float32)
# The two halves pull apart: each replica's share of the gradient is larger than their sum.
Y[8:] = -Y[:8] - 2 * X[8:] @ W0
GLOBAL_BATCH = 16


def loss_of(w, x, y):
    return tf.reduce_sum((x @ w - y) ** 2) / GLOBAL_BATCH


def by_hand(clip_norm):
    """The whole batch's gradient on one replica, clipped by tf.clip_by_global_norm."""
    w = tf.constant(W0)
    with tf.GradientTape() as tape:
        tape.watch(w)
        loss = loss_of(w, X, Y)
    (grad,), norm = tf.clip_by_global_norm([tape.gradient(loss, w)], clip_norm)
    return (W0 - grad.numpy()), float(norm)


def two_replicas(clip_norm, make_optimizer, keras_clip=False):
    """One step on 2 replicas: ours (apply_gradients) or Keras's own global_clipnorm."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        w = tf.Variable(W0)
        optimizer = make_optimizer()
        optimizer.build([w])
    halves = strategy.experimental_distribute_values_from_function(
        lambda ctx: (
            X[8 * ctx.replica_id_in_sync_group :][:8],
            Y[8 * ctx.replica_id_in_sync_group :][:8],
        )
    )

    @tf.function
    def step(batch):
        def replica(batch):
            with tf.GradientTape() as tape:
                loss = loss_of(w, *batch)
                if isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
                    loss = optimizer.scale_loss(loss)
            grads = tape.gradient(loss, [w])
            if keras_clip:
                optimizer.apply_gradients(zip(grads, [w]))
            else:
                apply_gradients(optimizer, grads, [w], clip_norm)

        strategy.run(replica, args=(batch,))

    step(halves)
    values = [v.numpy() for v in strategy.experimental_local_results(w)]
    return values[0], float(np.abs(values[0] - values[1]).max())


def diff(a, b):
    return float(np.abs(a - b).max())


_, full_norm = by_hand(1e9)
clip = full_norm / 4
expected, _ = by_hand(clip)
ours, replica_diff = two_replicas(clip, lambda: tf.keras.optimizers.SGD(1.0))
scaled, scaled_replica_diff = two_replicas(
    clip, lambda: tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.SGD(1.0))
)
keras, _ = two_replicas(
    clip, lambda: tf.keras.optimizers.SGD(1.0, global_clipnorm=clip), keras_clip=True
)
unclipped, _ = by_hand(1e9)
loose, _ = two_replicas(full_norm * 2, lambda: tf.keras.optimizers.SGD(1.0))
print(
    json.dumps(
        {
            "replicas": 2,
            "full_norm": full_norm,
            "ours_vs_by_hand": diff(ours, expected),
            "loss_scaled_vs_by_hand": diff(scaled, expected),
            "keras_global_clipnorm_vs_by_hand": diff(keras, expected),
            "step_size": diff(expected, W0),
            "replica_diffs": [replica_diff, scaled_replica_diff],
            "above_the_norm_is_unclipped": diff(loose, unclipped),
        }
    )
)
