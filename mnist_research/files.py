"""Writing files so that a killed process never leaves a half-written one.

Every output of the project (metrics, configs, figures, reports, tables) goes
through :func:`atomic_write_bytes`: the bytes land in a temporary file in the
same folder, are flushed to disk, and the file is renamed into place.
Reading one back never trusts it: only a regular file, only so many bytes
(:func:`read_bounded`).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from typing import Any

# The most bytes the project reads of a text file it reads whole: far more than any it
# writes (a flagfile, flags.txt, the checkpoint state file: a few KB; for JSON files:
# ``rundir.records.JSON_LIMIT``), and little enough that another file is refused at once.
TEXT_LIMIT = 1 << 20

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
    # A resumed run removes leftover ".tmp-*" files (rundir.existing).
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~UMASK)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):  # named by its own path, not the temporary one
            raise OSError(e.errno, e.strerror or str(e), path) from None
        raise


def atomic_write_text(path: str, text: str) -> None:
    """UTF-8 text through :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str, data: Any) -> None:
    """Indented, key-sorted JSON through :func:`atomic_write_bytes`."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


# What open_regular calls a file that is not a regular one.
_KINDS = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a FIFO",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


def open_regular(path: str):
    """``path`` opened for reading in binary mode, refused unless it is a regular file.

    The kind is checked on the opened file, and the open never waits: a FIFO
    (which would wait for a writer), a device (``/dev/zero`` reads without
    end) or a folder is refused (an OSError saying what it is), whatever link leads to it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _KINDS.items() if test(mode)), "a special file")
        raise OSError(errno.EINVAL, f"not a regular file but {kind}", path)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bounded(path: str, limit: int) -> bytes:
    """The whole of a regular file of at most ``limit`` bytes; an OSError if it is larger."""
    with open_regular(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(
            errno.EFBIG, f"larger than {limit:,} bytes, more than such a file of this project", path
        )
    return data
