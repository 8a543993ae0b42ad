"""What the training loop cannot go below: the input pipeline alone, and the raw-TF step.

The raw-TF floor writes the model's math in plain TF ops (Dense → batch
statistics BN → ReLU → stateless dropout, softmax cross-entropy, the fused Adam
kernel) over batches gathered from one in-memory float tensor by a
pre-shuffled index tensor, many steps per ``tf.function`` call, with no
tf.data, no Keras layers, no per-step sums and not even BN's moving averages.
With ``jit_compile`` the step is compiled by XLA, as the project's is. It is a
lower bound for any loop over this model on this machine, not a usable trainer.
"""

from __future__ import annotations

import time

import numpy as np


def pipeline_seconds(train_input, repeats: int) -> list[float]:
    """Seconds to build and drain one epoch's dataset, with nothing consuming the batches."""
    import tensorflow as tf

    drain = tf.function(lambda dataset: dataset.reduce(0, lambda n, _: n + 1))
    drain(train_input.dataset(0))  # Warm-up: traces the draining function once.
    samples = []
    for r in range(repeats):
        start = time.perf_counter()
        drain(train_input.dataset(r + 1)).numpy()
        samples.append(time.perf_counter() - start)
    return samples


def _raw_model(hidden_units, seed):
    import tensorflow as tf

    dims = [784, *hidden_units, 10]
    init = tf.keras.initializers.GlorotUniform(seed=seed)
    kernels = [tf.Variable(init((a, b))) for a, b in zip(dims[:-1], dims[1:])]
    gammas = [tf.Variable(tf.ones(d)) for d in hidden_units]
    betas = [tf.Variable(tf.zeros(d)) for d in hidden_units]
    bias = tf.Variable(tf.zeros(10))
    return kernels, gammas, betas, bias


def raw_floor_seconds(
    x_train,
    y_train,
    epochs: int,
    jit_compile: bool,
    hidden_units=(256, 128, 64),
    rates=(0.3, 0.3, 0.2),
    batch: int = 128,
    steps_per_call: int = 50,
) -> list[float]:
    """Seconds per epoch of the raw-TF step (after one warm-up epoch)."""
    import tensorflow as tf

    from mnist_research.training.optimizers import FusedAdam

    steps = len(x_train) // batch
    x = tf.constant(x_train.reshape(-1, 784).astype(np.float32) / 255.0)
    y = tf.one_hot(tf.constant(y_train.astype(np.int32)), 10)
    kernels, gammas, betas, bias = _raw_model(hidden_units, seed=0)
    variables = kernels + gammas + betas + [bias]
    optimizer = FusedAdam(1e-3)
    optimizer.build(variables)

    def step(index, seed):
        xb, yb = tf.gather(x, index), tf.gather(y, index)
        with tf.GradientTape() as tape:
            h = xb
            for i, rate in enumerate(rates):
                h = h @ kernels[i]
                mean, var = tf.nn.moments(h, [0])
                h = tf.nn.relu(tf.nn.batch_normalization(h, mean, var, betas[i], gammas[i], 1e-3))
                keep = tf.random.stateless_uniform(tf.shape(h), seed + i, alg="philox") >= rate
                h = tf.where(keep, h / (1.0 - rate), 0.0)
            loss = tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(yb, h @ kernels[-1] + bias)
            )
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    compiled = tf.function(step, jit_compile=True) if jit_compile else step

    @tf.function
    def run_steps(indices, first):
        for i in tf.range(tf.shape(indices)[0]):
            compiled(indices[i], tf.stack([tf.constant(0, tf.int64), first + tf.cast(i, tf.int64)]))

    def epoch(number):
        order = np.random.default_rng([0, number]).permutation(len(x_train))
        indices = order[: steps * batch].reshape(steps, batch).astype(np.int32)
        start = time.perf_counter()
        for s in range(0, steps, steps_per_call):
            run_steps(
                tf.constant(indices[s : s + steps_per_call]),
                tf.constant(number * steps + s, tf.int64),
            )
        float(bias[0])  # Waits for the last step.
        return time.perf_counter() - start

    epoch(0)  # Warm-up: tracing and compilation.
    return [epoch(e) for e in range(1, epochs + 1)]
