"""Building the trainer before the run dir is touched, and out-of-memory as one line.

A model too large for the machine is refused from its size alone when it
trains on the CPU (its parameters, gradients and the optimizer's slot
variables against the memory the kernel reports available), so nothing is
allocated; on a GPU, or when the estimate passes and memory still runs out,
TensorFlow's ``ResourceExhaustedError`` becomes a :class:`ConfigError`.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import tensorflow as tf

from mnist_research.config import ExperimentConfig, ModelConfig, optimizer
from mnist_research.errors import ConfigError, one_line
from mnist_research.model import registry
from mnist_research.training.loop import Trainer


def num_parameters(model: ModelConfig) -> int:
    """Numbers in the model ``model`` describes (``count_params``, BN statistics included).

    The model is built in a throwaway graph, whose variables are never
    initialized, so nothing the size of the model is allocated. Keras draws
    its initializers' seeds from Python's ``random``; its state is restored, so
    the run's own model gets the weights it would have got.
    """
    state = random.getstate()
    try:
        with tf.Graph().as_default():
            return registry.create(model).count_params()
    finally:
        random.setstate(state)


def available_memory() -> int | None:
    """Bytes the kernel reports available (``MemAvailable``), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_model_fits(config: ExperimentConfig, on_gpu: bool) -> None:
    """Refuses a CPU model whose training state cannot fit in the available memory.

    Raises:
      ConfigError: naming the parameter count and both sizes.
    """
    available = available_memory()
    if on_gpu or available is None:
        return
    params = num_parameters(config.model)
    # 4 bytes (float32) for each weight, its gradient and each of the optimizer's slots.
    needed = params * 4 * (2 + optimizer(config.train.optimizer).slots(config.train))
    if needed > available:
        raise ConfigError(
            f"the model has {params:,} parameters, about {needed / 2**30:.1f} GiB to train "
            f"with --optimizer={config.train.optimizer}, but only {available / 2**30:.1f} GiB "
            f"of memory is available; use a smaller model"
        )


@contextlib.contextmanager
def out_of_memory_as_error(config: ExperimentConfig) -> Iterator[None]:
    """Turns running out of memory inside the block into a one-line :class:`ConfigError`."""
    try:
        yield
    except (tf.errors.ResourceExhaustedError, MemoryError) as e:
        params = num_parameters(config.model)
        raise ConfigError(
            f"out of memory with a {params:,}-parameter model, batch size "
            f"{config.train.batch_size} and evaluation batch size "
            f"{config.train.eval_batch_size} ({one_line(e)[:160]}); use smaller "
            f"--hidden_units, --batch_size or --eval_batch_size"
        ) from None


def build_trainer(
    config: ExperimentConfig, strategy: tf.distribute.Strategy, steps_per_epoch: int, on_gpu: bool
) -> Trainer:
    """The :class:`Trainer`, or a :class:`ConfigError` when the model does not fit."""
    check_model_fits(config, on_gpu)
    with out_of_memory_as_error(config):
        return Trainer(config, strategy, steps_per_epoch)
