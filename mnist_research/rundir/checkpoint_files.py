"""A run's checkpoint files: their folder, the ``checkpoint`` state file, saving one.

Finding a usable checkpoint among them (the files on disk are the truth, not
only the state file) is :mod:`mnist_research.rundir.restore`, which an existing
run dir and the commands that read a run back use.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
from collections.abc import Iterator

import tensorflow as tf

from mnist_research import files
from mnist_research.errors import RunDirError, cause, one_line

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "checkpoint"
_FILE = re.compile(r"^ckpt-(\d+)\.(index|data-\d{5}-of-\d{5})$")


def numbers_on_disk(checkpoint_dir: str) -> list[int]:
    """Every N with a ``ckpt-N.index`` or ``ckpt-N.data-*`` file, newest first."""
    try:
        names = os.listdir(checkpoint_dir)
    except OSError:
        return []
    found = {int(m.group(1)) for m in map(_FILE.match, names) if m}
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


@contextlib.contextmanager
def saving(folder: str, epoch: int) -> Iterator[None]:
    """Saving ``folder/ckpt-<epoch>``: a failure removes its partial files and is one line.

    Raises:
      RunDirError: naming ``folder``, the cause (not TensorFlow's temporary file)
        and the checkpoint that is still the latest there.
    """
    try:
        yield
    except (OSError, tf.errors.OpError) as e:
        for path in glob.glob(os.path.join(glob.escape(folder), f"ckpt-{epoch}[._]*")):
            if os.path.isdir(path):  # TF's sharded save writes into ckpt-N_temp/
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.unlink(path)
        named, _ = read_state(folder)
        raise RunDirError(
            f"{folder}: could not save the checkpoint of epoch {epoch} ({cause(e)}); the "
            f"latest checkpoint there is still {f'ckpt-{named}' if named is not None else 'none'}"
        ) from None
