"""The strategies other than TensorFlow's default, and the ``TF_CONFIG`` cluster:
:mod:`training.devices` imports this module when ``--strategy`` names another
strategy or ``TF_CONFIG`` is set."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from mnist_research.errors import ConfigError


def create(name: str, device: str | None) -> tf.distribute.Strategy:
    """The strategy ``--strategy=name`` names (``devices.create_strategy``: the others).

    * ``one_device``: ``OneDeviceStrategy`` on ``device`` (``/cpu:0``, ``/gpu:0``;
      ``None``: the first GPU if any, else the CPU).
    * ``mirrored``: ``MirroredStrategy`` over all visible GPUs, or over the
      logical CPU devices when there are no GPUs (see ``devices.configure_devices``).
    * ``multi_worker``: ``MultiWorkerMirroredStrategy`` configured from ``TF_CONFIG``.
    """
    if name == "multi_worker":  # Before anything initialises the TF runtime (listing
        # logical devices does): collective ops must be configured at program start.
        if "TF_CONFIG" not in os.environ:
            raise ConfigError(
                "strategy=multi_worker needs the TF_CONFIG environment variable "
                "(see docs/devices.md)"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(
            _existing_device(device) if device else ("/gpu:0" if gpus else "/cpu:0")
        )
    assert name == "mirrored", name  # a strategy added to the declarations needs a branch
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=None if gpus else cpus)


def _existing_device(name: str) -> str:
    """``name`` if this machine has that device, else ConfigError listing the ones it has."""
    spec = tf.DeviceSpec.from_string(name)
    wanted = ((spec.device_type or "").upper(), spec.device_index or 0)
    available = [tf.DeviceSpec.from_string(d.name) for d in tf.config.list_logical_devices()]
    if wanted in [(d.device_type.upper(), d.device_index) for d in available]:
        return name
    names = ", ".join(d.to_string().replace("/device:", "/").lower() for d in available)
    raise ConfigError(f"--device={name}: no such device on this machine (it has {names})")


def parse_tf_config() -> dict:
    """The parsed ``TF_CONFIG``; a ConfigError unless it is
    ``{"cluster": {...}, "task": {"type": ..., "index": N}}`` with the task in the cluster."""
    try:
        parsed = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e})") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object, got {type(parsed).__name__}")
    cluster, task = parsed.get("cluster", {}), parsed.get("task", {})
    if not isinstance(cluster, dict) or not all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in cluster.values()
    ):
        raise ConfigError('TF_CONFIG "cluster" must map job names to lists of "host:port"')
    if not isinstance(task, dict):
        raise ConfigError('TF_CONFIG "task" must be {"type": ..., "index": N}')
    if task:
        kind, index = task.get("type"), task.get("index", 0)
        if type(index) is not int or kind not in cluster or not 0 <= index < len(cluster[kind]):
            raise ConfigError(
                f"TF_CONFIG task {task} is not in its cluster "
                f"({', '.join(f'{k}: {len(v)}' for k, v in cluster.items())})"
            )
    return parsed


def is_chief() -> bool:
    """True unless TF_CONFIG names this task as a non-chief worker."""
    parsed = parse_tf_config()
    task = parsed.get("task", {})
    task_type, task_id = task.get("type"), task.get("index", 0)
    if not task_type or task_type == "chief":
        return True
    # Without an explicit chief, worker 0 is the chief.
    return task_type == "worker" and task_id == 0 and "chief" not in parsed.get("cluster", {})


def num_workers() -> int:
    """Worker processes in the TF_CONFIG cluster."""
    cluster = parse_tf_config().get("cluster", {})
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def worker_id() -> str:
    """A name for this task, e.g. ``worker_1``."""
    task = parse_tf_config().get("task", {})
    return f"{task.get('type', 'chief')}_{task.get('index', 0)}"


def check_cluster(strategy: tf.distribute.Strategy, workers: int) -> None:
    """Refuses a TF_CONFIG cluster of several ``workers`` under a single-process strategy.

    Only worker 0 (or the chief) of a cluster writes the run dir: under another
    strategy each process would train alone, and every other worker would
    write nothing while reporting success.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise ConfigError(
            f"TF_CONFIG names a cluster of {workers} workers, but "
            f"{type(strategy).__name__.lstrip('_')} trains in this process alone; "
            f"use --strategy=multi_worker, or unset TF_CONFIG"
        )
