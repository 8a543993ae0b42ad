"""A run directory's layout: its file names, creating, overwriting and tidying it.

Layout::

    RUN_DIR/
      flags.txt         flagfile that reproduces the run
      config.json       the resolved ExperimentConfig
      metrics.json      final (and, while training, partial) metrics
      checkpoints/      tf.train.Checkpoint every epoch
      train/ validation/  TensorBoard event files
      export/ model.keras  the exported model
      reports/          figures and report.html
      .lock             held by the training process (see ``rundir.lock``)

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

from mnist_research.errors import RunDirError
from mnist_research.rundir.lock import LOCK_FILE

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
FLAGS_FILE = "flags.txt"

# Every path a run writes, relative to its run dir ("*" stays within one path
# segment, "**" spans segments). --overwrite deletes a directory only when every
# file and folder in it matches one of these, and one of _MARKERS is present.
_EXPORT_FILES = ("saved_model.pb", "fingerprint.pb", "assets", "variables",
                 "variables/variables.*")
_RUN_PATHS = (
    CONFIG_FILE, METRICS_FILE, FLAGS_FILE, LOCK_FILE, "model.keras", "events.out.tfevents.*",
    "evaluation-*.json", ".tmp-*", ".probe-*", ".export-tmp-*", ".export-tmp-*/**",
    "checkpoints", "checkpoints/checkpoint", "checkpoints/ckpt-*", "checkpoints/ckpt-*_temp/*",
    "checkpoints/.*-tmp", "checkpoints/.*-tmp/*", "checkpoints/best", "checkpoints/best/checkpoint",
    "checkpoints/best/ckpt-*", "checkpoints/best/ckpt-*_temp/*", "checkpoints/.tmp-*",
    "train", "validation", "*/events.out.tfevents.*", "*/events.out.tfevents.*.pruning",
    "train/plugins", "train/plugins/**",
    "reports", "reports/*.png", "reports/report.html", "reports/.tmp-*",
    "export", "export.old", *(f"{folder}/{name}" for folder in ("export", "export.old")
                              for name in _EXPORT_FILES))
_MARKERS = (CONFIG_FILE, FLAGS_FILE, "checkpoints")


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
      RunDirError: the path contains ``*``, ``?``, ``[``, ``]`` or a backslash.
    """
    found = sorted({c for c in run_dir if c in _GLOB_CHARACTERS})
    if found:
        raise RunDirError(f"{run_dir}: a run dir path cannot contain {' '.join(found)} "
                          f"(TensorFlow finds and deletes checkpoint files through glob "
                          f"patterns, so it could miss this run's checkpoints or delete another "
                          f"run's); choose another --run_dir")


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
        raise RunDirError(f"{run_dir}: cannot write to the run directory "
                          f"({e.strerror or e})") from None


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
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise RunDirError(f"{run_dir}: --overwrite refused: it holds {shown}, which a training "
                          f"run does not write; nothing was deleted. Delete it yourself or "
                          f"pick another --run_dir")
    if names and not any(n in names for n in _MARKERS):
        raise RunDirError(f"{run_dir}: --overwrite refused: it does not look like a run "
                          f"directory (no {', '.join(_MARKERS)}); nothing was deleted")


def _foreign_paths(run_dir: str) -> list[str]:
    """The files and folders under ``run_dir`` that a run does not write (relative paths)."""
    patterns = [re.compile(_path_regex(p)) for p in _RUN_PATHS]
    foreign = []
    for folder, dirs, files in os.walk(run_dir):
        prefix = os.path.relpath(folder, run_dir).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        unknown = {name for name in dirs + files
                   if not any(p.fullmatch(prefix + name) for p in patterns)}
        foreign += [prefix + name for name in unknown]
        dirs[:] = [d for d in dirs if d not in unknown]  # a foreign folder is named once
    return sorted(foreign)


def _path_regex(pattern: str) -> str:
    """``*`` within one path segment, ``**`` across segments; the rest literal."""
    return ".*".join("[^/]*".join(re.escape(piece) for piece in part.split("*"))
                     for part in pattern.split("**"))


def clear(run_dir: str) -> None:
    """Deletes a run dir's contents for ``--overwrite``, keeping the lock file."""
    for name in os.listdir(run_dir):
        if name == LOCK_FILE:
            continue
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


# Left behind only by a process killed mid-write: atomic_write_bytes temporaries,
# half-written exports, an export being replaced, event files being pruned, and
# TensorFlow's temporary directory of a checkpoint being saved.
STALE_PATTERNS = (".tmp-*", os.path.join("*", ".tmp-*"), ".export-tmp-*", "export.old",
                  os.path.join("*", "*.pruning"), os.path.join("checkpoints", "ckpt-*_temp"))


def remove_stale_temporaries(run_dir: str) -> list[str]:
    """Deletes what a killed run left half-written; returns the paths removed."""
    removed = []
    for pattern in STALE_PATTERNS:
        for path in glob.glob(os.path.join(glob.escape(run_dir), pattern)):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
            removed.append(path)
    return removed
