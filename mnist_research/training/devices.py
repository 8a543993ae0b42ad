"""The machine a run trains on: its devices and strategy, where this process stands in a
multi-worker cluster, its description, and whether the model fits in its memory."""

from __future__ import annotations

import contextlib
import os
import platform
import random
from collections.abc import Iterator

import tensorflow as tf

from mnist_research.config import OPTIMIZERS, DistributeConfig, ExperimentConfig, ModelConfig
from mnist_research.errors import ConfigError, one_line
from mnist_research.model import registry
from mnist_research.training.loop import Trainer


def configure_devices(config: DistributeConfig) -> None:
    """Splits the CPU into logical devices and sets the precision policy.

    Must run before the first TensorFlow op: once the runtime is initialised
    with other devices, setting logical devices raises RuntimeError.
    """
    if config.num_cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        if len(tf.config.get_logical_device_configuration(cpu) or ()) != config.num_cpu_devices:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * config.num_cpu_devices
            )
    precision = config.mixed_precision
    tf.keras.mixed_precision.set_global_policy("float32" if precision == "none" else precision)


def create_strategy(config: DistributeConfig) -> tf.distribute.Strategy:
    """The strategy ``config.strategy`` names (``default``: TensorFlow's no-op default
    strategy, one device); a ConfigError for a malformed ``TF_CONFIG`` or a
    ``config.device`` this machine lacks."""
    if os.environ.get("TF_CONFIG"):  # malformed: one line now, not a traceback from TF later
        _strategies().parse_tf_config()
    name = config.strategy
    if name == "auto":
        name = "mirrored" if tf.config.list_logical_devices("GPU") else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    return _strategies().create(name, config.device)


def _strategies():
    """:mod:`training.strategies`: only another strategy, or a run in a ``TF_CONFIG``
    cluster, needs it (one process without TF_CONFIG is the chief, worker 0 of 1)."""
    from mnist_research.training import strategies

    return strategies


def is_chief() -> bool:
    """True unless TF_CONFIG names this task as a non-chief worker."""
    return not os.environ.get("TF_CONFIG") or _strategies().is_chief()


def num_workers() -> int:
    """Worker processes in the TF_CONFIG cluster (1 without TF_CONFIG)."""
    return _strategies().num_workers() if os.environ.get("TF_CONFIG") else 1


def worker_id() -> str:
    """A name for this task, e.g. ``worker_1``; ``chief_0`` for single-process runs."""
    return _strategies().worker_id() if os.environ.get("TF_CONFIG") else "chief_0"


def _proc_value(path: str, key: str) -> str:
    """The value of the first ``key: value`` line of a /proc file ("" if none)."""
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    return ""


def cpu_name() -> str:
    name = " ".join(_proc_value("/proc/cpuinfo", "model name").split())
    return name or platform.processor() or platform.machine() or "CPU"


def available_memory() -> int | None:
    """Bytes the kernel reports available (``MemAvailable``), or ``None`` if unknown."""
    value = _proc_value("/proc/meminfo", "MemAvailable").split()  # ["8123456", "kB"]
    return int(value[0]) * 1024 if value and value[0].isdigit() else None


def device_info(strategy: tf.distribute.Strategy) -> dict:
    """What the run executes on: kind, name, count, replicas."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus and not _pinned_to_cpu(strategy):
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        kind, count = "gpu", len(gpus)
    else:
        name, kind, count = cpu_name(), "cpu", 1
    return {
        "device_kind": kind,
        "device_name": name,
        "device_count": count,
        "num_replicas": strategy.num_replicas_in_sync,
        # MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy.
        "strategy": (
            "MultiWorkerMirroredStrategy"
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            else type(strategy).__name__.lstrip("_")
        ),
        "tensorflow_version": tf.__version__,
    }


def _pinned_to_cpu(strategy: tf.distribute.Strategy) -> bool:
    try:
        devices = strategy.extended.worker_devices
    except (AttributeError, RuntimeError):  # The default strategy has none.
        return not tf.config.list_logical_devices("GPU")
    return bool(devices) and all("CPU" in d.upper() for d in devices)


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


def check_model_fits(config: ExperimentConfig, on_gpu: bool) -> None:
    """Refuses (ConfigError) a CPU model whose training state cannot fit in available memory."""
    available = available_memory()
    if on_gpu or available is None:
        return
    params = num_parameters(config.model)
    # 4 bytes (float32) for each weight, its gradient and each of the optimizer's slots.
    needed = params * 4 * (2 + OPTIMIZERS[config.train.optimizer].slots(config.train))
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
    """The :class:`Trainer`, or a :class:`ConfigError` when the model does not fit.

    A model too large for the machine is refused from its size alone when it
    trains on the CPU (its parameters, gradients and the optimizer's slot
    variables against the memory the kernel reports available), so nothing is
    allocated; on a GPU, or when the estimate passes and memory still runs out,
    TensorFlow's ``ResourceExhaustedError`` becomes the ConfigError.
    """
    check_model_fits(config, on_gpu)
    with out_of_memory_as_error(config):
        return Trainer(config, strategy, steps_per_epoch)
