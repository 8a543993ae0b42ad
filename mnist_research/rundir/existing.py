"""A run dir that already holds something: whose it is, and clearing or tidying it.

A run into a new or empty folder needs none of this (``training.runner`` imports
it only for a folder that is not empty). Only a directory with the marker (or a
run dir written before the marker existed, see :func:`ownership`) or an empty
one is ever written to; clean-up only touches this project's own names at the
places it writes them.
"""

from __future__ import annotations

import glob
import os
import re
import shutil

from absl import logging

from mnist_research.errors import RunDirError
from mnist_research.rundir import layout, records
from mnist_research.rundir.layout import (
    CONFIG_FILE,
    FLAGS_FILE,
    MARKER_FILE,
    METRICS_FILE,
    PORTABLE_FILES,
)
from mnist_research.rundir.lock import LOCK_FILE

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
            if records.load_config(run_dir) is not None:
                return "ours"
        except records.DamagedFileError:
            pass
    return "foreign"


def check_ours(run_dir: str) -> str:
    """Refuses a non-empty folder that is not a run dir of this project; returns its ownership.

    Also refuses a run dir whose ``export/`` holds files a run does not write
    (the run replaces ``export/`` at its end), and one that
    :func:`check_contained` refuses (links).

    Raises:
      RunDirError: in one line, before anything is written.
    """
    owner = ownership(run_dir)
    if owner == "foreign":
        raise RunDirError(
            f"{run_dir}: not empty and not a run directory of this project (no "
            f"{MARKER_FILE} marker, nor a config.json of this project with "
            f"its flags.txt or checkpoints/); nothing was written. Choose a new or "
            f"empty --run_dir"
        )
    if owner == "ours":
        check_contained(run_dir)
        for folder in ("export", "export.old"):
            foreign = foreign_under(run_dir, folder)
            if foreign:
                raise RunDirError(
                    f"{run_dir}: {', '.join(foreign[:3])} is not a file a run "
                    f"writes, and the run replaces {folder}/; move it out "
                    f"first. Nothing was written"
                )
    return owner


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
