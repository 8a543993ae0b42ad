"""The same MLP trained for a whole run by the project, PyTorch and JAX (+optax).

Each runner gets the same split (the first 48,000 training images, the last
12,000 for validation, the 10,000 test images), trains the original notebook's MLP (Dense
without bias → BatchNormalization (momentum 0.99, epsilon 1e-3) → ReLU →
Dropout 0.3/0.3/0.2, softmax head; Adam 1e-3, epsilon 1e-7; batch 128;
reshuffled every epoch) and runs a validation pass after every epoch. The clock
starts before the model is built and stops after the last validation pass, so
building, tracing and compiling and the first epoch are included on every
side; importing the framework and loading the data are not.

PyTorch and JAX are optional: they are not dependencies of this project, and a
runner whose framework is not importable reports that instead of timing.
Run one runner per process (the benchmark does) so frameworks do not share
thread pools::

    python -m mnist_research.benchmarks.peers {project,torch,jax} DATA_DIR EPOCHS OUT.json
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time

import numpy as np

RUNNERS = ("project", "torch", "jax")
REQUIREMENTS = {"project": ("tensorflow",), "torch": ("torch",), "jax": ("jax", "optax")}
HIDDEN, RATES, BATCH, SEED = (256, 128, 64), (0.3, 0.3, 0.2), 128, 42
EVAL_BATCH = 2000  # Every side evaluates 2,000 images per batch, as the project does.


def missing(runner: str) -> list[str]:
    """The packages ``runner`` needs that are not importable here."""
    return [name for name in REQUIREMENTS[runner] if importlib.util.find_spec(name) is None]


def load_splits(data_dir: str):
    """uint8 images and int labels: (train, validation, test), as the project splits them."""
    from mnist_research import config as config_lib
    from mnist_research.data import sources

    data_config = config_lib.DataConfig(data_dir=data_dir)
    s = sources.split(sources.load(data_config), data_config)
    return (s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)


def _floats(images):
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def _result(epoch_seconds, total, val_accuracy, test_accuracy):
    return {
        "epoch_seconds": epoch_seconds,
        "total_seconds": total,
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
    }


def run_project(data_dir: str, epochs: int) -> dict:
    """The project's trainer (XLA step, ``tf.range`` loop) and evaluator."""
    import tensorflow as tf

    from mnist_research import config as config_lib
    from mnist_research.data import pipeline
    from mnist_research.training import loop

    (x, y), (xv, yv), (xt, yt) = load_splits(data_dir)
    tf.keras.utils.set_random_seed(SEED)
    config = config_lib.ExperimentConfig(train=config_lib.TrainConfig(seed=SEED))
    strategy = tf.distribute.get_strategy()
    train_input = pipeline.TrainInput(x, y, BATCH, SEED)
    steps = train_input.steps_per_epoch()
    start = time.perf_counter()
    trainer = loop.Trainer(config, strategy, steps)
    validate = trainer.make_evaluator(pipeline.eval_dataset(xv, yv, EVAL_BATCH))
    batches = train_input.distributed(trainer.strategy, 1, epochs, steps)
    seconds, val = [], []
    for _ in range(epochs):
        epoch_start = time.perf_counter()
        loop.train_epoch(trainer, batches, steps)
        val.append(validate().means()["accuracy"])
        seconds.append(time.perf_counter() - epoch_start)
    total = time.perf_counter() - start
    test = trainer.make_evaluator(pipeline.eval_dataset(xt, yt, EVAL_BATCH))().means()["accuracy"]
    return _result(seconds, total, val, test)


def run_torch(data_dir: str, epochs: int) -> dict:
    """A PyTorch eager loop over tensors indexed per batch."""
    import torch
    from torch import nn

    (x, y), (xv, yv), (xt, yt) = load_splits(data_dir)
    torch.manual_seed(SEED)
    x, xv, xt = (torch.from_numpy(_floats(a)) for a in (x, xv, xt))
    y, yv, yt = (torch.from_numpy(a.astype(np.int64)) for a in (y, yv, yt))
    start = time.perf_counter()
    layers, width = [], 784
    for units, rate in zip(HIDDEN, RATES):
        layers += [
            nn.Linear(width, units, bias=False),
            nn.BatchNorm1d(units, eps=1e-3, momentum=0.01),
            nn.ReLU(),
            nn.Dropout(rate),
        ]
        width = units
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()

    def accuracy(images, labels):
        model.eval()
        with torch.no_grad():
            correct = sum(
                int(
                    (
                        model(images[i : i + EVAL_BATCH]).argmax(1) == labels[i : i + EVAL_BATCH]
                    ).sum()
                )
                for i in range(0, len(images), EVAL_BATCH)
            )
        return correct / len(images)

    seconds, val = [], []
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        order = torch.from_numpy(np.random.default_rng([SEED, epoch]).permutation(len(x)))
        for i in range(len(x) // BATCH):
            index = order[i * BATCH : (i + 1) * BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[index]), y[index]).backward()
            optimizer.step()
        val.append(accuracy(xv, yv))
        seconds.append(time.perf_counter() - epoch_start)
    total = time.perf_counter() - start
    return _result(seconds, total, val, accuracy(xt, yt))


def _jax_functions(jax, jnp, optax, optimizer):
    """The jitted train step and logits function of the MLP in plain JAX."""

    def forward(params, stats, images, key=None):
        h, new_stats = images, []
        for i, rate in enumerate(RATES):
            h = h @ params["kernels"][i]
            if key is not None:  # Training: batch statistics, moving averages, dropout.
                mean, var = h.mean(0), h.var(0)
                new_stats.append(
                    (0.99 * stats[i][0] + 0.01 * mean, 0.99 * stats[i][1] + 0.01 * var)
                )
            else:
                mean, var = stats[i]
            h = (h - mean) * jax.lax.rsqrt(var + 1e-3) * params["gammas"][i] + params["betas"][i]
            h = jax.nn.relu(h)
            if key is not None:
                keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1.0 - rate, h.shape)
                h = jnp.where(keep, h / (1.0 - rate), 0.0)
        return h @ params["head"] + params["bias"], new_stats

    @jax.jit
    def train_step(params, stats, opt_state, images, labels, index, key):
        def loss_fn(p):
            logits, new_stats = forward(p, stats, images[index], key)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels[index]).mean()
            return loss, new_stats

        (_, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state

    logits = jax.jit(lambda params, stats, images: forward(params, stats, images)[0])
    return train_step, logits


def run_jax(data_dir: str, epochs: int) -> dict:
    """A jitted JAX + optax step; batches gathered on device from an index batch."""
    import jax
    import jax.numpy as jnp
    import optax

    (x, y), (xv, yv), (xt, yt) = load_splits(data_dir)
    images, labels = jnp.asarray(_floats(x)), jnp.asarray(y.astype(np.int32))
    start = time.perf_counter()
    key = jax.random.PRNGKey(SEED)
    glorot = jax.nn.initializers.glorot_uniform()
    dims = (784, *HIDDEN)
    keys = jax.random.split(key, len(HIDDEN) + 2)
    params = {
        "kernels": [glorot(keys[i], (dims[i], dims[i + 1])) for i in range(len(HIDDEN))],
        "gammas": [jnp.ones(u) for u in HIDDEN],
        "betas": [jnp.zeros(u) for u in HIDDEN],
        "head": glorot(keys[-2], (HIDDEN[-1], 10)),
        "bias": jnp.zeros(10),
    }
    stats = [(jnp.zeros(u), jnp.ones(u)) for u in HIDDEN]
    optimizer = optax.adam(1e-3, eps=1e-7)
    opt_state = optimizer.init(params)
    train_step, logits = _jax_functions(jax, jnp, optax, optimizer)

    def accuracy(imgs, lbls):
        floats = _floats(imgs)
        correct = sum(
            int(
                (
                    np.asarray(logits(params, stats, floats[i : i + EVAL_BATCH])).argmax(1)
                    == lbls[i : i + EVAL_BATCH]
                ).sum()
            )
            for i in range(0, len(floats), EVAL_BATCH)
        )
        return correct / len(floats)

    seconds, val, step = [], [], 0
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        order = np.random.default_rng([SEED, epoch]).permutation(len(x)).astype(np.int32)
        for i in range(len(x) // BATCH):
            params, stats, opt_state = train_step(
                params,
                stats,
                opt_state,
                images,
                labels,
                order[i * BATCH : (i + 1) * BATCH],
                jax.random.fold_in(keys[-1], step),
            )
            step += 1
        val.append(accuracy(xv, yv))
        seconds.append(time.perf_counter() - epoch_start)
    total = time.perf_counter() - start
    return _result(seconds, total, val, accuracy(xt, yt))


def main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[1] not in RUNNERS:
        print(f"usage: {argv[0]} {{{','.join(RUNNERS)}}} DATA_DIR EPOCHS OUT.json", file=sys.stderr)
        return 2
    runner, data_dir, epochs, output = argv[1], argv[2], int(argv[3]), argv[4]
    absent = missing(runner)
    if absent:
        result = {"skipped": f"{', '.join(absent)} not importable"}
    else:
        result = {"project": run_project, "torch": run_torch, "jax": run_jax}[runner](
            data_dir, epochs
        )
    with open(output, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
