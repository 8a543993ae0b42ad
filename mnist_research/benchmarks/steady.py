"""Epoch times, in one process: the project's loop vs ``model.fit``.

Every runner trains a fresh model for ``epochs`` epochs and records each
epoch's seconds *with that epoch's validation pass*, as Keras's ``model.fit``
reports them (its ``on_epoch_end`` comes after validation). The first epoch
includes tracing and compilation; the steady state is the median of epochs
2..N. Runners:

- ``project``: the project's :class:`Trainer` (XLA-compiled step, ``tf.range``
  loop, ``--steps_per_loop`` steps per call) and its validation evaluator;
  ``project_plain`` the same with ``--nojit_compile``.
- ``identical_fit``: the identical model (``MLPClassifier``, stateless dropout,
  ``FusedAdam``) and the identical ``tf.data`` pipelines under Keras
  ``model.fit`` (Keras's default ``jit_compile``, which is off on a CPU);
  ``identical_fit_xla`` the same with ``jit_compile=True``.
- ``notebook_fit``: the original notebook's recipe (``notebook_recipe.fit``): a ``Sequential`` model
  with Keras ``Dropout``, ``model.fit`` on NumPy arrays, ``validation_split=0.2``.
"""

from __future__ import annotations

import time

import numpy as np

RUNNERS = ("project", "project_plain", "identical_fit", "identical_fit_xla", "notebook_fit")


def project(
    data, epochs: int, seed: int, steps_per_loop: int, jit_compile: bool = True
) -> list[float]:
    """Per-epoch seconds (validation included) of the project's trainer."""
    import tensorflow as tf

    from mnist_research import config as config_lib
    from mnist_research.data import pipeline
    from mnist_research.training import loop

    tf.keras.utils.set_random_seed(seed)
    config = config_lib.ExperimentConfig(
        train=config_lib.TrainConfig(
            seed=seed, steps_per_loop=steps_per_loop, jit_compile=jit_compile
        )
    )
    train_input = pipeline.TrainInput(data.x_train, data.y_train, config.train.batch_size, seed)
    steps = train_input.steps_per_epoch()
    seconds = []
    start = time.perf_counter()
    trainer = loop.Trainer(config, tf.distribute.get_strategy(), steps)
    validate = trainer.make_evaluator(
        pipeline.eval_dataset(data.x_val, data.y_val, config.train.eval_batch_size)
    )
    batches = train_input.distributed(trainer.strategy, 1, epochs, steps)
    for _ in range(epochs):
        loop.train_epoch(trainer, batches, steps)
        validate()
        seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
    return seconds


def identical_fit(data, epochs: int, seed: int, jit_compile) -> list[float]:
    """Per-epoch seconds of ``model.fit`` on the project's model and pipelines."""
    import tensorflow as tf

    from mnist_research import config as config_lib
    from mnist_research.benchmarks import notebook_recipe
    from mnist_research.data import pipeline
    from mnist_research.model import mlp
    from mnist_research.training.optimizers import FusedAdam

    tf.keras.utils.set_random_seed(seed)
    train_input = pipeline.TrainInput(data.x_train, data.y_train, 128, seed)
    timer = notebook_recipe.epoch_timer()
    model = mlp.MLPClassifier.from_config_object(config_lib.ModelConfig())
    model.compile(
        optimizer=FusedAdam(1e-3),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    model.fit(
        train_input.dataset(0).repeat(),
        epochs=epochs,
        steps_per_epoch=train_input.steps_per_epoch(),
        validation_data=pipeline.eval_dataset(
            data.x_val, data.y_val, config_lib.TrainConfig().eval_batch_size
        ),
        shuffle=False,  # a tf.data input; Keras ignores shuffle=True for one, and warns
        verbose=0,
        callbacks=[timer],
    )
    return timer.seconds


def notebook_fit(data, epochs: int, seed: int) -> list[float]:
    """Per-epoch seconds of the original notebook's ``model.fit``.

    It trains on its whole training set with 20 % held out for validation.
    """
    import tensorflow as tf

    from mnist_research.benchmarks import notebook_recipe

    tf.keras.utils.set_random_seed(seed)
    images = np.concatenate([data.x_train, data.x_val])
    labels = np.concatenate([data.y_train, data.y_val])
    x, y = notebook_recipe.preprocess(images, labels)
    timer = notebook_recipe.epoch_timer()
    notebook_recipe.fit(x, y, epochs, timer)
    return timer.seconds


def run(runner: str, data, epochs: int, seed: int = 42, steps_per_loop: int = 50) -> list[float]:
    """Per-epoch seconds of one runner (see the module docstring)."""
    if runner in ("project", "project_plain"):
        return project(data, epochs, seed, steps_per_loop, jit_compile=runner == "project")
    if runner == "identical_fit":
        return identical_fit(data, epochs, seed, jit_compile="auto")
    if runner == "identical_fit_xla":
        return identical_fit(data, epochs, seed, jit_compile=True)
    if runner == "notebook_fit":
        return notebook_fit(data, epochs, seed)
    raise ValueError(f"unknown runner {runner!r}; expected one of {', '.join(RUNNERS)}")
