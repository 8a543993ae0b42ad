"""A run directory's layout: its file names, creating, overwriting and tidying it.

Layout::

    RUN_DIR/
      flags.txt         flagfile that reproduces the run
      config.json       the resolved ExperimentConfig
      metrics.json      final (and, while training, partial) metrics
      checkpoints/      tf.train.Checkpoint every epoch
      train/ validation/  TensorBoard event files
      export/ model.keras  the exported model
      export.tflite export_int8.tflite export.onnx  its conversions (``export`` command)
      reports/          figures and report.html
      .lock             held by the training process (see ``rundir.lock``)
      .mnist_research-run  marker: written when a run first writes the directory

Only a directory with the marker (or a run dir written before the marker
existed, see ``records.ownership``) or an empty one is ever written to; clean-up
only touches this project's own names at the places it writes them.

Every file is written to a temporary name and renamed into place, so a
killed process never leaves a half-written file behind. Reading the files
back is :mod:`mnist_research.rundir.records`.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
import time

from absl import logging

from mnist_research.errors import RunDirError
from mnist_research.files import atomic_write_text
from mnist_research.rundir.lock import LOCK_FILE

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
FLAGS_FILE = "flags.txt"
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

# Every path a run writes, relative to its run dir ("*" stays within one path
# segment, "**" spans segments). --overwrite deletes a directory only when every
# file and folder in it matches one of these, and one of _MARKERS is present.
_EXPORT_FILES = ("saved_model.pb", "fingerprint.pb", "assets", "variables", "variables/variables.*")
_RUN_PATHS = (
    CONFIG_FILE,
    METRICS_FILE,
    FLAGS_FILE,
    LOCK_FILE,
    MARKER_FILE,
    "model.keras",
    "events.out.tfevents.*",
    "evaluation-*.json",
    ".tmp-*",
    ".probe-*",
    ".export-tmp-*",
    ".export-tmp-*/**",
    ".export-*-tmp",
    ".export-*-tmp/**",
    "checkpoints",
    "checkpoints/checkpoint",
    "checkpoints/ckpt-*",
    "checkpoints/ckpt-*_temp/part-*",
    "checkpoints/.*-tmp",
    "checkpoints/.*-tmp/*",
    "checkpoints/best",
    "checkpoints/best/checkpoint",
    "checkpoints/best/ckpt-*",
    "checkpoints/best/ckpt-*_temp/part-*",
    "checkpoints/.tmp-*",
    "train",
    "validation",
    "*/events.out.tfevents.*",
    "*/events.out.tfevents.*.pruning",
    "train/plugins",
    "train/plugins/**",
    "reports",
    "reports/*.png",
    "reports/report.html",
    "reports/.tmp-*",
    "export",
    "export.old",
    *PORTABLE_FILES.values(),
    *(f"{folder}/{name}" for folder in ("export", "export.old") for name in _EXPORT_FILES),
)
_MARKERS = (MARKER_FILE, CONFIG_FILE, FLAGS_FILE, "checkpoints")


def default_run_dir(experiment: str, device_tag: str, root: str = "runs") -> str:
    """``runs/<experiment>-<device>-<YYYYmmdd-HHMMSS>``."""
    return os.path.join(root, f"{experiment}-{device_tag}-{time.strftime('%Y%m%d-%H%M%S')}")


# TensorFlow's glob metacharacters (its file system treats a backslash as an escape).
_GLOB_CHARACTERS = "*?[]\\"


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
    found = sorted({c for c in run_dir if c in _GLOB_CHARACTERS})
    if found:
        raise RunDirError(
            f"{run_dir}: a run dir path cannot contain {' '.join(found)} "
            f"(TensorFlow finds and deletes checkpoint files through glob "
            f"patterns, so it could miss this run's checkpoints or delete another "
            f"run's); choose another --run_dir"
        )


def ensure_writable(run_dir: str) -> None:
    """Creates ``run_dir`` if needed and checks that files can be written in it.

    Raises:
      RunDirError: it cannot be created or written.
    """
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=run_dir, prefix=".probe-", delete=True)
        probe.close()
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
        atomic_write_text(os.path.join(run_dir, MARKER_FILE), _MARKER_TEXT)


# What a run writes as folders and as files at fixed names (the rest are patterns in
# _RUN_PATHS); something else in their place makes a write or a read fail mid-run.
_FOLDERS = ("checkpoints", "checkpoints/best", "train", "validation", "reports", "export")
_FILES = (
    CONFIG_FILE,
    METRICS_FILE,
    FLAGS_FILE,
    MARKER_FILE,
    LOCK_FILE,
    "model.keras",
    "checkpoints/checkpoint",
    "checkpoints/best/checkpoint",
)


def check_contained(run_dir: str) -> None:
    """Refuses a run dir whose writes, prunes or clean-ups could act outside it or fail.

    That is one holding a symbolic link anywhere (the project never writes one,
    and following it would touch another folder), anything but files and folders
    (a FIFO or device would hang or feed a reader without end), or a folder where
    a run writes a file or the other way round.

    Raises:
      RunDirError: naming the first such path, in one line.
    """
    for folder, dirs, names in os.walk(run_dir):
        for name in sorted(dirs + names):
            path = os.path.join(folder, name)
            if os.path.islink(path):
                _refuse(
                    path,
                    "a symbolic link; a run dir holds none (every write, prune and "
                    "clean-up of a run stays inside it)",
                )
            if not (os.path.isdir(path) or os.path.isfile(path)):
                _refuse(path, "neither a regular file nor a folder")
    for relative, wanted, is_kind in (
        *((f, "folder", os.path.isdir) for f in _FOLDERS),
        *((f, "regular file", os.path.isfile) for f in _FILES),
    ):
        path = os.path.join(run_dir, relative)
        if os.path.lexists(path) and not is_kind(path):
            _refuse(path, f"not a {wanted}, which a run writes there")


def _refuse(path: str, why: str) -> None:
    raise RunDirError(f"{path}: {why}; nothing was written. Move it out of the run dir")


def foreign_under(run_dir: str, folder: str) -> list[str]:
    """The paths under ``run_dir/folder`` that a run does not write (relative to ``run_dir``)."""
    return [p for p in _foreign_paths(run_dir) if p == folder or p.startswith(folder + "/")]


def check_overwritable(run_dir: str) -> None:
    """Refuses ``--overwrite`` of anything but an empty dir or a run dir of this project.

    Raises:
      RunDirError: ``run_dir`` is not a directory, or holds files a run does not
        write (named in the message), or none of a run's own files.
    """
    if not os.path.lexists(run_dir):
        return
    if not os.path.isdir(run_dir):
        raise RunDirError(f"{run_dir}: not a directory; --overwrite refused")
    names = sorted(os.listdir(run_dir))
    foreign = _foreign_paths(run_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise RunDirError(
            f"{run_dir}: --overwrite refused: it holds {shown}, which a training "
            f"run does not write; nothing was deleted. Delete it yourself or "
            f"pick another --run_dir"
        )
    if names and not any(n in names for n in _MARKERS):
        raise RunDirError(
            f"{run_dir}: --overwrite refused: it does not look like a run "
            f"directory (no {', '.join(_MARKERS)}); nothing was deleted"
        )


def _foreign_paths(run_dir: str) -> list[str]:
    """The files and folders under ``run_dir`` that a run does not write (relative paths)."""
    patterns = [re.compile(_path_regex(p)) for p in _RUN_PATHS]
    foreign = []
    for folder, dirs, files in os.walk(run_dir):
        prefix = os.path.relpath(folder, run_dir).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        unknown = {
            name for name in dirs + files if not any(p.fullmatch(prefix + name) for p in patterns)
        }
        foreign += [prefix + name for name in unknown]
        dirs[:] = [d for d in dirs if d not in unknown]  # a foreign folder is named once
    return sorted(foreign)


def _path_regex(pattern: str) -> str:
    """``*`` within one path segment, ``**`` across segments; the rest literal."""
    return ".*".join(
        "[^/]*".join(re.escape(piece) for piece in part.split("*")) for part in pattern.split("**")
    )


def clear(run_dir: str) -> None:
    """Deletes a run dir's contents for ``--overwrite``, keeping the lock file and the marker."""
    for name in os.listdir(run_dir):
        if name in (LOCK_FILE, MARKER_FILE):
            continue
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


# Left behind only by a process killed mid-write, each at the one place the project
# writes it: atomic_write_bytes temporaries (the run dir, reports/, checkpoints/),
# half-written exports (the chief's and other workers'), an export being replaced,
# event files being pruned (train/, validation/), and TensorFlow's temporary directory
# of a checkpoint being saved (checkpoints/ and checkpoints/best/).
_TEMP = ".tmp-*"
STALE_PATTERNS = (
    _TEMP,
    os.path.join("reports", _TEMP),
    os.path.join("checkpoints", _TEMP),
    os.path.join("checkpoints", "best", _TEMP),
    ".export-tmp-*",
    ".export-*-tmp",
    "export.old",
    os.path.join("train", "*.pruning"),
    os.path.join("validation", "*.pruning"),
    os.path.join("checkpoints", "ckpt-*_temp"),
    os.path.join("checkpoints", "best", "ckpt-*_temp"),
)


def remove_stale_temporaries(run_dir: str) -> list[str]:
    """Deletes what a killed run left half-written; returns the paths removed.

    A folder is deleted only when everything in it is a name a run writes
    there; one holding anything else is left alone, with a warning.
    """
    removed = []
    for pattern in STALE_PATTERNS:
        for path in glob.glob(os.path.join(glob.escape(run_dir), pattern)):
            if os.path.islink(path):
                continue  # a run never writes links
            if os.path.isdir(path):
                relative = os.path.relpath(path, run_dir).replace(os.sep, "/")
                if foreign_under(run_dir, relative):
                    logging.warning("%s: holds files a run does not write; left as it is", path)
                    continue
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.isfile(path):
                os.unlink(path)
            else:
                continue
            removed.append(path)
    return removed
