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
import time

from mnist_research.errors import RunDirError

LOCK_FILE = ".lock"
# How long taking the lock keeps trying: ``records.holder`` tells from outside whether a run
# is training now (``runs`` shows it) by taking a shared lock for an instant (microseconds);
# this outlasts that, and is short beside any real run, which holds it for its whole length.
_RETRY_SECONDS = 1.0


def _take(fd: int) -> bool:
    """Takes the exclusive lock on ``fd``; False if a process still holds it after the retries."""
    deadline = time.monotonic() + _RETRY_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


class RunDirLock:
    """Holds ``RUN_DIR/.lock`` (``run_dir`` exists) for the duration of a ``with`` block;
    a RunDirError naming the PID and host of another process that holds it."""

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
                    f"nothing was written through it; remove it yourself"
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
            taken = _take(fd)
        except OSError as e:
            os.close(fd)
            raise RunDirError(f"{self.path}: cannot lock ({e.strerror or e})") from None
        if not taken:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(
                f"{self.run_dir} is in use by another training process ({holder}); "
                f"wait for it to finish (or stop it), or use another --run_dir"
            ) from None
        who = f"PID {os.getpid()} on {socket.gethostname()}\n".encode()
        os.pwrite(fd, who, 0)  # then cut what is left of an earlier holder's line:
        os.ftruncate(fd, len(who))  # a records.holder() probe never reads an empty file
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
