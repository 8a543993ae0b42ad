"""One training process per run dir: an advisory lock on ``RUN_DIR/.lock``.

``flock`` on an open file: the operating system releases it when the holder
exits in any way (SIGKILL included), so a killed run never leaves a stale
lock behind, and the file's content (the holder's PID) only serves the
message a second process prints. Multi-worker runs lock on the chief only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat

from mnist_research.errors import RunDirError

LOCK_FILE = ".lock"


class RunDirLock:
    """Holds ``RUN_DIR/.lock`` for the duration of a ``with`` block.

    Args:
      run_dir: an existing run directory.

    Raises:
      RunDirError: (on entering) another process holds the lock; the message
        names its PID and host.
    """

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK_FILE)
        self._fd = None

    def __enter__(self) -> RunDirLock:
        try:
            # Never through a link: a .lock replaced by a link to a file elsewhere
            # would have that file truncated and a PID written into it.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise RunDirError(
                    f"{self.path}: a symbolic link, not this project's lock; "
                    f"nothing was written through it; remove it "
                    f"yourself"
                ) from None
            raise RunDirError(
                f"{self.path}: cannot create the run-dir lock ({e.strerror or e})"
            ) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunDirError(
                f"{self.path}: not a regular file, so not this project's lock; remove it yourself"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(
                f"{self.run_dir} is in use by another training process "
                f"({holder}); wait for it to finish (or stop it), or use "
                f"another --run_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
