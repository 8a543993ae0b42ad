"""The run directory: its layout, atomic writes, and resume safety.

Layout::

    RUN_DIR/
      flags.txt         flagfile that reproduces the run
      config.json       the resolved ExperimentConfig
      metrics.json      final (and, while training, partial) metrics
      checkpoints/      tf.train.Checkpoint every epoch
      train/ validation/  TensorBoard event files
      reports/          figures

Every file is written to a temporary name and renamed into place, so a
killed process never leaves a half-written file behind.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from typing import Any, Optional

from mnist_research.config import ExperimentConfig
from mnist_research.errors import RunDirError
from mnist_research.files import atomic_write_text, read_json, write_json

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
FLAGS_FILE = "flags.txt"


def default_run_dir(experiment: str, device_tag: str, root: str = "runs") -> str:
    """``runs/<experiment>-<device>-<YYYYmmdd-HHMMSS>``."""
    return os.path.join(root, f"{experiment}-{device_tag}-{time.strftime('%Y%m%d-%H%M%S')}")


def prepare(run_dir: str, config: ExperimentConfig) -> None:
    """Creates ``run_dir`` (or checks an existing one belongs to this experiment).

    Raises:
      RunDirError: the directory cannot be created or written, or it holds a
        run whose model/recipe differs from ``config``.
    """
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=run_dir, prefix=".probe-", delete=True)
        probe.close()
    except OSError as e:
        raise RunDirError(f"{run_dir}: cannot write to the run directory "
                          f"({e.strerror or e})") from None
    try:
        saved = read_json(os.path.join(run_dir, CONFIG_FILE))
    except (OSError, ValueError) as e:
        raise RunDirError(f"{run_dir}/{CONFIG_FILE}: unreadable ({e})") from None
    if saved is not None:
        previous = ExperimentConfig.from_dict(saved).identity()
        current = config.identity()
        if previous != current:
            diffs = _differences(previous, current)
            raise RunDirError(
                f"{run_dir} holds a run with different settings ({'; '.join(diffs)}); "
                f"use a new --run_dir or --overwrite")


# Left behind only by a process killed mid-write: atomic_write_bytes temporaries,
# half-written exports, an export being replaced, event files being pruned, and
# TensorFlow's temporary directory of a checkpoint being saved.
STALE_PATTERNS = (".tmp-*", os.path.join("*", ".tmp-*"), ".export-tmp-*", "export.old",
                  os.path.join("*", "*.pruning"), os.path.join("checkpoints", "ckpt-*_temp"))


def remove_stale_temporaries(run_dir: str) -> list[str]:
    """Deletes what a killed run left half-written; returns the paths removed."""
    removed = []
    for pattern in STALE_PATTERNS:
        for path in glob.glob(os.path.join(run_dir, pattern)):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
            removed.append(path)
    return removed


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


def save_config(run_dir: str, config: ExperimentConfig, flagfile_text: str) -> None:
    write_json(os.path.join(run_dir, CONFIG_FILE), config.to_dict())
    atomic_write_text(os.path.join(run_dir, FLAGS_FILE), flagfile_text)


def finished_metrics(run_dir: str) -> Optional[dict[str, Any]]:
    """The final ``metrics.json`` of a finished run, or ``None`` while it is unfinished.

    This is the one place that decides whether a run is finished: the run
    writes ``metrics.json`` with ``finished: true`` last, after its export and
    reports.
    """
    metrics = read_json(os.path.join(run_dir, METRICS_FILE))
    return metrics if isinstance(metrics, dict) and metrics.get("finished") else None
