"""Writing files so that a killed process never leaves a half-written one.

Every output of the project (metrics, configs, figures, reports, tables) goes
through :func:`atomic_write_bytes`: the bytes land in a temporary file in the
same folder, are flushed to disk, and the file is renamed into place.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

# Temporary files of atomic_write_bytes start with this; a resumed run removes leftovers.
TEMP_PREFIX = ".tmp-"

# The process umask, read once: os.umask can only be read by setting it.
UMASK = os.umask(0o022)
os.umask(UMASK)


def atomic_write_bytes(path: str, payload: bytes) -> None:
    """Writes ``payload`` to ``path`` via a temporary file and a rename.

    The file gets the permissions an ordinary ``open()`` would give it (0666
    less the umask), not ``mkstemp``'s private 0600.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~UMASK)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """UTF-8 text through :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str, data: Any) -> None:
    """Indented, key-sorted JSON through :func:`atomic_write_bytes`."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str) -> Any | None:
    """The parsed file, or ``None`` when it does not exist.

    Raises:
      OSError: it cannot be read.
      ValueError: it is not UTF-8 JSON (``JSONDecodeError``, ``UnicodeDecodeError``).
    """
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except RecursionError:
            raise ValueError("nested too deeply to be a file of this project") from None
