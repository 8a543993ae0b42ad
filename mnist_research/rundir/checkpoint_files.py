"""A run's checkpoint files read back: the numbers on disk, the one the state file names.

Finding a usable checkpoint among them (the files on disk are the truth, not
only the state file) is :mod:`mnist_research.rundir.restore`, which an existing
run dir and the commands that read a run back use. Saving one is
:class:`mnist_research.training.checkpoint_state.CheckpointState`'s.
"""

from __future__ import annotations

import os
import re

from mnist_research import files
from mnist_research.errors import one_line
from mnist_research.rundir.layout import CHECKPOINT_DIR as CHECKPOINT_DIR

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
