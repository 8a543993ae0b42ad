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
import re
import shlex
import shutil
import sys
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
    """Writes ``config.json`` and ``flags.txt``.

    A relative ``data_dir`` is stored as an absolute path, so ``evaluate``,
    ``report`` and ``predict`` find the data from any working directory.
    """
    saved = config.to_dict()
    if saved["data"].get("data_dir"):
        saved["data"]["data_dir"] = os.path.abspath(saved["data"]["data_dir"])
    write_json(os.path.join(run_dir, CONFIG_FILE), saved)
    atomic_write_text(os.path.join(run_dir, FLAGS_FILE), flagfile_text)


def finished_metrics(run_dir: str) -> Optional[dict[str, Any]]:
    """The final ``metrics.json`` of a finished run, or ``None`` while it is unfinished.

    This is the one place that decides whether a run is finished: the run
    writes ``metrics.json`` with ``finished: true`` last, after its export and
    reports.
    """
    metrics = read_json(os.path.join(run_dir, METRICS_FILE))
    return metrics if isinstance(metrics, dict) and metrics.get("finished") else None


def latest_unfinished(logdir: str, config: ExperimentConfig) -> Optional[str]:
    """The most recently active unfinished run of ``config``'s experiment under ``logdir``.

    A candidate is a direct sub-directory holding a ``config.json`` with the
    same experiment name and the same model and recipe
    (:meth:`ExperimentConfig.identity`) that has not finished; the newest is
    the one whose ``config.json``, ``metrics.json`` or checkpoints changed last.

    Returns:
      Its path, or ``None`` when there is none.
    """
    candidates = []
    for path in glob.glob(os.path.join(glob.escape(logdir), "*", CONFIG_FILE)):
        run_dir = os.path.dirname(path)
        try:
            saved = ExperimentConfig.from_dict(read_json(path))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a run dir of this project
        if (saved.experiment != config.experiment or saved.identity() != config.identity()
                or finished_metrics(run_dir) is not None):
            continue
        touched = [os.path.getmtime(p) for p in (path, os.path.join(run_dir, METRICS_FILE),
                                                  os.path.join(run_dir, "checkpoints"))
                   if os.path.exists(p)]
        candidates.append((max(touched), run_dir))
    return max(candidates)[1] if candidates else None


# Flags a resume command leaves out: where the run goes is given by --run_dir, and
# --overwrite would delete the run being resumed.
_NOT_REPEATED = re.compile(r"^--?(no)?(run_dir|overwrite|resume)(=.*)?$")


def resume_command(run_dir: str, argv: list[str]) -> str:
    """The shell command that resumes ``run_dir``: ``argv`` as typed, with ``--run_dir``.

    Args:
      run_dir: the run directory to resume.
      argv: the command line that started it (``sys.argv``: the program, then
        its arguments).

    Returns:
      E.g. ``python -m mnist_research.train --flagfile=experiments/baseline.flags
      --run_dir=runs/baseline-cpu-20261125-140000``, quoted for a POSIX shell.
    """
    args, skip_value = [], False
    for arg in argv[1:]:
        if skip_value:
            skip_value = False
            continue
        match = _NOT_REPEATED.match(arg)
        if match:
            skip_value = match.group(2) == "run_dir" and match.group(3) is None
            continue
        args.append(arg)
    return " ".join(_program(argv[0] if argv else "")
                    + [shlex.quote(a) for a in args + [f"--run_dir={run_dir}"]])


def _program(argv0: str) -> list[str]:
    """How to start the running command again: ``python -m <module>`` or its script."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        module = spec.name[:-len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        python = "python" if _on_path_as("python", sys.executable) else sys.executable
        return [shlex.quote(python), "-m", module]
    name = os.path.basename(argv0)
    return [name if _on_path_as(name, argv0) else shlex.quote(argv0 or "python")]


def _on_path_as(name: str, path: str) -> bool:
    found = shutil.which(name)
    return bool(found and path and os.path.realpath(found) == os.path.realpath(path))
