"""A run's records read back: ``config.json``, ``flags.txt``, ``metrics.json``, and who trains it.

Training writes them (``config.json`` and ``flags.txt``: ``layout.save_config``);
``evaluate``, ``report``, ``compare``, ``sweep`` and resuming read them back.
Reading a file back never gives a traceback: a damaged one raises
:class:`DamagedFileError`.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import stat
from typing import Any

from absl import app, flags

from mnist_research import files, flagfiles
from mnist_research.config import ExperimentConfig
from mnist_research.config.registry import METRICS, TIMING_KEYS
from mnist_research.config.saved import config_from_arguments, config_from_dict
from mnist_research.errors import RunDirError, cause
from mnist_research.rundir.layout import CONFIG_FILE, FLAGS_FILE, METRICS_FILE
from mnist_research.rundir.lock import LOCK_FILE


class DamagedFileError(RunDirError):
    """A file of a run dir (``path``) exists but cannot be used: ``reason``, in a few words."""

    def __init__(self, path: str, reason: str, advice: str = ""):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: damaged ({reason})" + (f"; {advice}" if advice else ""))


# The most bytes read of a JSON file: config.json, and metrics.json, whose history grows by
# ~200 bytes an epoch (64 MiB is ~300,000 epochs); a benchmark's results.
JSON_LIMIT = 64 << 20


def read_json(path: str) -> Any | None:
    """The parsed file (at most JSON_LIMIT bytes), or ``None`` when it does not exist.

    Raises:
      OSError: it cannot be read, is not a regular file, or is too large.
      ValueError: it is not UTF-8 JSON (``JSONDecodeError``, ``UnicodeDecodeError``).
    """
    if not os.path.lexists(path):
        return None
    try:
        return json.loads(files.read_bounded(path, JSON_LIMIT).decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply to be a file of this project") from None


def load_config(run_dir: str) -> ExperimentConfig | None:
    """The run's saved configuration, or ``None`` when it has none.

    Raises:
      DamagedFileError: ``config.json`` is not JSON, or not a valid configuration.
    """
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.lexists(path):
        return None
    try:
        return config_from_dict(read_json(path))
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError too
        raise DamagedFileError(path, cause(e)) from None


def flags_txt_config(run_dir: str) -> ExperimentConfig | None:
    """The settings ``flags.txt`` resolves to; ``None`` when it is missing, empty or unusable.

    (A run started from the library, not the command, writes an empty one.)
    """
    try:
        text = files.read_bounded(os.path.join(run_dir, FLAGS_FILE), files.TEXT_LIMIT)
        arguments = flagfiles.arguments(text.decode("utf-8"))
        if not arguments:
            return None
        return config_from_arguments(arguments)
    except (OSError, UnicodeDecodeError, flags.Error, app.UsageError):
        return None


def recorded_data(run_dir: str) -> str | None:
    """The data fingerprint ``metrics.json`` records (``None``: none, or unreadable)."""
    value = recorded(run_dir).get("data_sha256")
    return value if isinstance(value, str) else None


def recorded(run_dir: str) -> dict[str, Any]:
    """``metrics.json`` as far as it reads as an object; ``{}`` when missing or damaged."""
    try:
        document = read_json(os.path.join(run_dir, METRICS_FILE))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def finished_metrics(run_dir: str) -> dict[str, Any] | None:
    """The final ``metrics.json`` of a finished run, or ``None`` while it is unfinished.

    This is the one place that decides whether a run is finished: the run
    writes ``metrics.json`` with ``finished: true`` last, after its export and
    reports.

    Raises:
      DamagedFileError: ``metrics.json`` is not JSON or lacks what a finished
        run records; the training command rebuilds it from the checkpoint.
    """
    path = os.path.join(run_dir, METRICS_FILE)
    advice = f"rerun the train command with --run_dir={run_dir} to rebuild it"
    if not os.path.lexists(path):
        return None
    try:
        metrics = read_json(path)
    except (OSError, ValueError) as e:
        raise DamagedFileError(path, cause(e), advice) from None
    problem = metrics_problem(metrics)
    if problem:
        raise DamagedFileError(path, problem, advice)
    return metrics if metrics.get("finished") else None


def records_progress(run_dir: str) -> bool:
    """Whether the run dir records a finished epoch (``metrics.json`` follows every checkpoint)."""
    return os.path.exists(os.path.join(run_dir, METRICS_FILE))


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool (JSON's true and false)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    """A number that is not NaN, Infinity or an integer beyond a float."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond a float
        return False


def _first_non_finite(value: Any, where: str) -> str | None:
    """The path of the first NaN, Infinity or float-overflowing integer in a JSON document."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    elif _is_number(value) and not _is_finite_number(value):
        return where or "the document"
    else:
        return None
    for key, item in items:
        found = _first_non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


# The history keys every finished run holds (``config.registry``: the required metrics').
REQUIRED_HISTORY_KEYS = (
    tuple(
        key for metric in METRICS if metric.required for key in (metric.name, f"val_{metric.name}")
    )
    + TIMING_KEYS
)


def metrics_problem(document: Any) -> str | None:
    """What makes a ``metrics.json`` document unusable, or ``None`` when it is sound.

    A finished document must hold ``epochs_completed`` epochs of every required
    history key (a metric declared later may be absent) and of every other key
    it holds, and the required test scores; an unfinished one only needs to be
    an object.
    """
    if not isinstance(document, dict):
        return f"a JSON {type(document).__name__}, expected an object"
    odd = _first_non_finite(document, "")
    if odd:
        return f"{odd} is not a finite number"
    if not isinstance(document.get("finished", False), bool):
        return "'finished' is not true or false"
    if not document.get("finished"):
        return None
    epochs = document.get("epochs_completed")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        return f"epochs_completed is {epochs!r}"
    history = document.get("history")
    if not isinstance(history, dict):
        return "no history"
    for key in dict.fromkeys([*REQUIRED_HISTORY_KEYS, *history]):
        values = history.get(key)
        if not isinstance(values, list) or len(values) != epochs:
            return f"history.{key} does not hold {epochs} values"
        if not all(_is_finite_number(v) for v in values):
            return f"history.{key} holds a value that is not a finite number"
    for key in (f"test_{metric.name}" for metric in METRICS if metric.required):
        if not _is_finite_number(document.get(key)):
            return f"{key} is {str(document.get(key))[:40]}, not a finite number"
    return None


def holder(run_dir: str) -> str | None:
    """Who trains in ``run_dir`` now (``"PID 123 on host"``, from its lock file), or None.

    None too when the lock cannot be looked at (no lock file, a link, no
    permission): this only informs, it never refuses anything.
    """
    try:
        fd = os.open(os.path.join(run_dir, LOCK_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown process"
        except OSError:
            return None
        return None  # closing the file below releases the shared lock
    finally:
        os.close(fd)
