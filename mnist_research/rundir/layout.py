"""A run directory's layout: its file names, its checkpoint files read back, and starting
a run in a new or empty one (docs/run_directory.md lists the layout).

Only a directory with the marker (or a run dir written before the marker
existed) or an empty one is ever written to. A run dir that already holds
something is checked, cleared or tidied by :mod:`mnist_research.rundir.existing`;
reading its records back is :mod:`mnist_research.rundir.records`. Every file
is written atomically (:mod:`mnist_research.files`).
"""

from __future__ import annotations

import os
import re
import tempfile
import time

from mnist_research import files
from mnist_research.config import ExperimentConfig
from mnist_research.errors import RunDirError, one_line

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
FLAGS_FILE = "flags.txt"
CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "checkpoint"  # in CHECKPOINT_DIR: names the latest ckpt-N
_CHECKPOINT_FILE = re.compile(r"^ckpt-(\d+)\.(index|data-\d{5}-of-\d{5})$")
# The SavedModel converted by ``python -m mnist_research.export --format=KEY``.
PORTABLE_FILES = {
    "tflite": "export.tflite",
    "tflite_int8": "export_int8.tflite",
    "onnx": "export.onnx",
}
# Written (first) into every directory a training run writes: what makes a folder provably
# a run dir of this project, so that clean-up, rewrites and --overwrite may act in it.
MARKER_FILE = ".mnist_research-run"
_MARKER_TEXT = "A run directory of mnist_research (do not delete: it marks the folder as one).\n"


def numbers_on_disk(checkpoint_dir: str) -> list[int]:
    """Every N with a ``ckpt-N.index`` or ``ckpt-N.data-*`` file, newest first."""
    try:
        names = os.listdir(checkpoint_dir)
    except OSError:
        return []
    found = {int(m.group(1)) for m in map(_CHECKPOINT_FILE.match, names) if m}
    return sorted(found, reverse=True)


def read_state(checkpoint_dir: str) -> tuple[int | None, str]:
    """The N the ``checkpoint`` state file names, or ``None`` and what is wrong with it."""
    path = os.path.join(checkpoint_dir, STATE_FILE)
    if not os.path.exists(path):
        return None, "is missing"
    try:
        text = files.read_bounded(path, files.TEXT_LIMIT).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, f"is unreadable ({getattr(e, 'strerror', None) or one_line(e)})"
    match = re.search(r'^model_checkpoint_path:\s*"(?:.*/)?ckpt-(\d+)"\s*$', text, re.M)
    return (int(match.group(1)), "") if match else (None, "is garbage")


def default_run_dir(experiment: str, info: dict, root: str) -> str:
    """``<root>/<experiment>-<device>-<YYYYmmdd-HHMMSS>``, the device ``cpu``, ``gpu``,
    ``2gpu`` (from ``info``: ``devices.device_info``)."""
    replicas, kind = info["num_replicas"], info["device_kind"]
    device = f"{replicas}{kind}" if replicas > 1 else kind
    return os.path.join(root, f"{experiment}-{device}-{time.strftime('%Y%m%d-%H%M%S')}")


def check_path(run_dir: str) -> None:
    """Refuses a run dir path that TensorFlow would treat as a glob pattern.

    TensorFlow finds checkpoint files, and its checkpoint manager deletes old
    ones, through glob patterns built from the path: under ``runs/exp[1]`` a
    saved checkpoint is never found again (a resume would start over), and
    under ``runs/exp*`` deleting ``ckpt-1`` also deletes ``runs/exp2``'s. This
    project's own globs escape the run dir.

    Raises:
      RunDirError: the path contains ``*``, ``?``, ``[``, ``]`` or a backslash,
        or a byte that is not UTF-8.
    """
    try:
        run_dir.encode("utf-8")
    except UnicodeEncodeError:
        raise RunDirError(
            f"{ascii(run_dir)}: a run dir path must be valid UTF-8 (TensorFlow's "
            f"summaries and checkpoints cannot name it); nothing was written; "
            f"choose another --run_dir"
        ) from None
    # TensorFlow's glob metacharacters (its file system treats a backslash as an escape).
    found = sorted({c for c in run_dir if c in "*?[]\\"})
    if found:
        raise RunDirError(
            f"{run_dir}: a run dir path cannot contain {' '.join(found)} "
            f"(TensorFlow finds and deletes checkpoint files through glob "
            f"patterns, so it could miss this run's checkpoints or delete another "
            f"run's); choose another --run_dir"
        )


def ensure_writable(run_dir: str) -> None:
    """Creates ``run_dir`` if needed; a RunDirError unless files can be written in it."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=run_dir, prefix=".probe-").close()  # deleted on close
    except OSError as e:
        raise RunDirError(
            f"{run_dir}: cannot write to the run directory ({e.strerror or e})"
        ) from None


def has_marker(run_dir: str) -> bool:
    """Whether ``run_dir`` holds the marker a run writes first (a regular file, not a link)."""
    marker = os.path.join(run_dir, MARKER_FILE)
    return os.path.isfile(marker) and not os.path.islink(marker)


def claim(run_dir: str) -> None:
    """Writes the marker into ``run_dir`` (an empty dir or a run dir of this project)."""
    if not has_marker(run_dir):
        files.atomic_write_text(os.path.join(run_dir, MARKER_FILE), _MARKER_TEXT)


def is_empty(run_dir: str) -> bool:
    """Whether ``run_dir`` is missing or an empty folder: nothing there to check or resume."""
    try:
        return not os.path.lexists(run_dir) or (os.path.isdir(run_dir) and not os.listdir(run_dir))
    except OSError:
        return False  # unreadable: the existing run dir's checks say so in one line


def save_config(run_dir: str, config: ExperimentConfig, flagfile_text: str) -> None:
    """Writes ``config.json`` and ``flags.txt``.

    A relative ``data_dir`` is stored as an absolute path, so ``evaluate``,
    ``report`` and ``predict`` find the data from any working directory.
    """
    saved = config.to_dict()
    if saved["data"].get("data_dir"):
        saved["data"]["data_dir"] = os.path.abspath(saved["data"]["data_dir"])
    files.write_json(os.path.join(run_dir, CONFIG_FILE), saved)
    files.atomic_write_text(os.path.join(run_dir, FLAGS_FILE), flagfile_text)
