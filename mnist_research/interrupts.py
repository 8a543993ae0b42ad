"""SIGINT and SIGTERM as a clean stop instead of a traceback or a silent exit.

The ``train`` command installs :func:`handle_signals`. Inside a
:func:`deferred` block (the epoch loop) a signal only records a request, and
the loop calls :func:`check` at every step boundary, so it stops between
``tf.function`` calls and never in the middle of a checkpoint save. Anywhere
else the signal raises :class:`Interrupted` at once; every file the run
writes is atomic, so that is as safe as the SIGKILL a resumed run already
survives. A second signal always raises at once.

Without :func:`handle_signals` (a notebook, a test) :func:`check` never
raises and Python's own Ctrl-C handling is untouched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)

_requested: int | None = None
_deferring = 0


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM.

    A ``BaseException`` (as ``KeyboardInterrupt`` is), so no ``except
    Exception`` on the way up swallows it.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """128 + the signal number, as a shell reports a process killed by it (130, 143)."""
        return 128 + self.signum


def _handler(signum, frame) -> None:
    global _requested
    first = _requested is None
    _requested = signum
    if not (_deferring and first):
        raise Interrupted(signum)


def _exit_now(signum, frame) -> None:
    print(
        f"{signal.Signals(signum).name}: stopped while starting; nothing was written",
        file=sys.stderr,
        flush=True,
    )
    os._exit(128 + signum)  # mid-import: no cleanup to run, and none that could fail


def exit_while_starting() -> None:
    """Until :func:`handle_signals` takes over: a signal exits at once with one line.

    A command calls this first thing, so Ctrl-C while TensorFlow is still being
    imported is not a ``KeyboardInterrupt`` traceback.
    """
    if threading.current_thread() is threading.main_thread():
        for signum in HANDLED:
            signal.signal(signum, _exit_now)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Turns SIGINT/SIGTERM into :class:`Interrupted` while the block runs (main thread)."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested = None
    previous = {signum: signal.signal(signum, _handler) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _requested = None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block a first signal is only recorded; :func:`check` raises it.

    Leaving the block normally raises a request recorded after the last check.
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    check()


def check() -> None:
    """Raises :class:`Interrupted` if a signal arrived since the handlers were installed."""
    if _requested is not None:
        raise Interrupted(_requested)
