"""A run's records: reading and writing ``config.json``, ``flags.txt`` and ``metrics.json``.

Training writes them; ``evaluate``, ``report``, ``compare``, ``sweep`` and
resuming read them back. Reading a file back never gives a traceback: a
damaged one raises :class:`DamagedFileError`.
"""

from __future__ import annotations

import math
import os
from typing import Any

from absl import app, flags, logging

from mnist_research import files, flagfiles
from mnist_research.config import ExperimentConfig
from mnist_research.config import flags as experiment_flags
from mnist_research.config.metrics import METRICS, REQUIRED_HISTORY_KEYS
from mnist_research.config.saved import config_from_dict, differences, resume_identity
from mnist_research.errors import DamagedFileError, RunDirError, cause
from mnist_research.files import atomic_write_text, read_json, write_json
from mnist_research.rundir import layout
from mnist_research.rundir.layout import CONFIG_FILE, FLAGS_FILE, METRICS_FILE


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
        return experiment_flags.config_from_arguments(arguments)
    except (OSError, UnicodeDecodeError, flags.Error, app.UsageError):
        return None


def ownership(run_dir: str) -> str:
    """Whose ``run_dir`` is: ``"absent"``, ``"empty"``, ``"ours"`` or ``"foreign"``.

    Ours: it holds the marker every run writes first, or it is a run dir
    written before the marker existed: a ``config.json`` that reads back as
    this project's configuration, next to this project's ``flags.txt`` or a
    ``checkpoints/`` folder. Anything else that is not empty is foreign.

    Raises:
      RunDirError: ``run_dir`` exists but is not a directory.
    """
    if not os.path.lexists(run_dir):
        return "absent"
    if not os.path.isdir(run_dir):
        raise RunDirError(f"{run_dir}: not a directory; choose another --run_dir")
    try:
        names = os.listdir(run_dir)
    except OSError as e:
        raise RunDirError(f"{run_dir}: cannot read the run directory ({e.strerror or e})") from None
    if not names:
        return "empty"
    if layout.has_marker(run_dir):
        return "ours"
    config_path = os.path.join(run_dir, CONFIG_FILE)
    companions = os.path.isfile(os.path.join(run_dir, FLAGS_FILE)) or os.path.isdir(
        os.path.join(run_dir, "checkpoints")
    )
    if os.path.isfile(config_path) and not os.path.islink(config_path) and companions:
        try:
            if load_config(run_dir) is not None:
                return "ours"
        except DamagedFileError:
            pass
    return "foreign"


def check_ours(run_dir: str) -> str:
    """Refuses a non-empty folder that is not a run dir of this project; returns its ownership.

    Also refuses a run dir whose ``export/`` holds files a run does not write
    (the run replaces ``export/`` at its end), and one that
    :func:`~mnist_research.rundir.layout.check_contained` refuses (links).

    Raises:
      RunDirError: in one line, before anything is written.
    """
    owner = ownership(run_dir)
    if owner == "foreign":
        raise RunDirError(
            f"{run_dir}: not empty and not a run directory of this project (no "
            f"{layout.MARKER_FILE} marker, nor a config.json of this project with "
            f"its flags.txt or checkpoints/); nothing was written. Choose a new or "
            f"empty --run_dir"
        )
    if owner == "ours":
        layout.check_contained(run_dir)
        for folder in ("export", "export.old"):
            foreign = layout.foreign_under(run_dir, folder)
            if foreign:
                raise RunDirError(
                    f"{run_dir}: {', '.join(foreign[:3])} is not a file a run "
                    f"writes, and the run replaces {folder}/; move it out "
                    f"first. Nothing was written"
                )
    return owner


def check_settings(run_dir: str, config: ExperimentConfig) -> DamagedFileError | None:
    """Refuses a run dir that holds a run with a different model or recipe.

    Returns:
      ``None``, or the error when ``config.json`` is damaged: the caller then
      checks the settings stored in the checkpoint instead.

    Raises:
      RunDirError: the saved settings differ from ``config`` (named in the message).
    """
    try:
        saved = load_config(run_dir)
    except DamagedFileError as e:
        return e
    if saved is not None and resume_identity(saved) != resume_identity(config):
        diffs = differences(resume_identity(saved), resume_identity(config))
        raise RunDirError(
            f"{run_dir} holds a run with different settings ({'; '.join(diffs)}); "
            f"use a new --run_dir or --overwrite"
        )
    return None


# What a resumed run must share with the epochs ``metrics.json`` records besides its
# settings: the data it read, and the placement that decides the dropout masks (each
# replica draws its own stream, so another replica count trains another experiment).
SAME_RUN_KEYS = {
    "data_sha256": "the data read (sha256 of the uint8 train/validation arrays after the split)",
    "strategy": "--strategy",
    "num_replicas": "the replica count",
}


def check_same_run(run_dir: str, info: dict[str, Any]) -> None:
    """Refuses to resume a run whose recorded data or replica placement differ from ``info``.

    ``metrics.json`` (written with every checkpoint) records them. A run
    recorded before the data fingerprint existed has none: it is resumed with
    one warning line (its data cannot be checked) and records it from then on.
    A damaged or missing ``metrics.json`` checks nothing (nothing trained, or
    rebuilt from the checkpoint).

    Raises:
      RunDirError: naming each difference.
    """
    recorded = _recorded(run_dir)
    if not recorded.get("epochs_completed"):
        return
    diffs = [
        f"{what}: {recorded[key]} -> {info[key]}"
        for key, what in SAME_RUN_KEYS.items()
        if key in recorded and key in info and recorded[key] != info[key]
    ]
    if diffs:
        raise RunDirError(
            f"{run_dir} was trained with other {'; '.join(diffs)}; resuming would "
            f"train another experiment under its name. Use the run's own data and "
            f"placement, a new --run_dir, or --overwrite"
        )
    if "data_sha256" not in recorded and "data_sha256" in info:
        logging.warning(
            "%s records no data fingerprint (written before they existed): the data "
            "of this resume cannot be checked against its earlier epochs",
            run_dir,
        )


def recorded_data(run_dir: str) -> str | None:
    """The data fingerprint ``metrics.json`` records (``None``: none, or unreadable)."""
    value = _recorded(run_dir).get("data_sha256")
    return value if isinstance(value, str) else None


def _recorded(run_dir: str) -> dict[str, Any]:
    """``metrics.json`` as far as it reads as an object; ``{}`` when missing or damaged."""
    try:
        recorded = read_json(os.path.join(run_dir, METRICS_FILE))
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


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
