"""SIGINT and SIGTERM as a clean stop instead of a traceback or a silent exit.

Under :func:`handle_signals` a signal raises :class:`Interrupted` at once,
except in a :func:`deferred` block (the epoch loop), where a first signal is
only recorded and :func:`check`, called at every step boundary, raises it
between ``tf.function`` calls. Without :func:`handle_signals` (a notebook, a
test) :func:`check` never raises and Python's own Ctrl-C handling is untouched.

Python runs a signal handler only when the main thread runs Python code, so a
main thread blocked in TensorFlow (compiling the first step, a long step,
saving) would act on a signal only when that call returns. With a
``stop_line``, a thread watches for signals too: if the main thread has not
acted on one within GRACE_SECONDS, the process prints ``stop_line`` and exits
at once with 128 + the signal number. Every file a run writes is atomic, so
that is as safe as the SIGKILL a resumed run already survives.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 0.8

_requested: int | None = None
# Signals the main thread's handler has run for, and whether it has raised Interrupted.
_handled = 0
_acted = threading.Event()
# How many deferred() blocks (of each kind: "first", "every") the main thread is in.
_blocks = collections.Counter()


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM: a ``BaseException`` (as ``KeyboardInterrupt``
    is), so no ``except Exception`` on the way up swallows it."""

    def __init__(self, signum: int):
        self.name = signal.Signals(signum).name
        super().__init__(self.name)
        self.signum = signum
        # As a shell reports a process killed by the signal (130, 143).
        self.exit_status = 128 + signum


def _handler(signum, frame) -> None:
    global _requested, _handled
    first = _requested is None
    _requested = signum
    _handled += 1
    if not (_blocks["every"] or (_blocks["first"] and first)):
        _acted.set()
        raise Interrupted(signum)


def _watch(read_fd: int, stop_line: Callable[[Interrupted], str]) -> None:
    """Stops the process when the main thread has not acted on a signal within GRACE_SECONDS.

    Python's C-level handler writes each signal's number to the wakeup pipe
    ``read_fd`` as it arrives, whatever the main thread is doing."""
    seen = 0
    with open(read_fd, "rb", buffering=0) as pipe:
        while data := pipe.read(1):
            if data[0] not in HANDLED:
                continue
            seen += 1
            deadline = time.monotonic() + GRACE_SECONDS
            while time.monotonic() < deadline and not (_acted.is_set() and _handled >= seen):
                time.sleep(0.02)
            if _acted.is_set() and _handled >= seen:
                continue
            stopped = Interrupted(data[0])
            try:
                line = stop_line(stopped)
            except Exception:  # the main thread was midway through what the line reads
                line = f"{stopped.name}: stopped"
            print(line, file=sys.stderr, flush=True)
            os._exit(stopped.exit_status)


def exit_while_starting() -> None:
    """Until :func:`handle_signals` takes over, a signal exits at once with one line: a command
    calls this first thing, so Ctrl-C while TensorFlow is imported is not a traceback."""

    def exit_now(signum, frame) -> None:
        name = signal.Signals(signum).name
        print(f"{name}: stopped while starting; nothing was written", file=sys.stderr, flush=True)
        os._exit(128 + signum)  # mid-import: no cleanup to run, and none that could fail

    if threading.current_thread() is threading.main_thread():
        for signum in HANDLED:
            signal.signal(signum, exit_now)


@contextlib.contextmanager
def handle_signals(stop_line: Callable[[Interrupted], str] | None = None) -> Iterator[None]:
    """Turns SIGINT/SIGTERM into :class:`Interrupted` while the block runs (main thread);
    with a ``stop_line``, the watch thread runs too."""
    global _requested, _handled
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested, _handled = None, 0
    _acted.clear()
    previous = {signum: signal.signal(signum, _handler) for signum in HANDLED}
    if stop_line is not None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(
            target=_watch, args=(read_fd, stop_line), name="signal-watch", daemon=True
        ).start()
    try:
        yield
    finally:
        if stop_line is not None:
            signal.set_wakeup_fd(previous_fd)
            os.close(write_fd)  # the watch thread reads the end of the pipe and ends
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _requested = None


@contextlib.contextmanager
def deferred(every: bool = False) -> Iterator[None]:
    """A first signal (with ``every``, each one) is only recorded: :func:`check` raises it,
    and so does leaving the block normally.

    ``every`` is for a few quick writes no stop may split (a new trial and the
    name of its process). ``signal.pthread_sigmask`` would not hold them off:
    it masks the calling thread alone, the kernel hands the signal to another
    thread (the heartbeat's, TensorFlow's), and Python still runs the handler
    in the main thread at once.
    """
    kind = "every" if every else "first"
    _blocks[kind] += 1
    try:
        yield
    finally:
        _blocks[kind] -= 1
    check()


def check() -> None:
    """Raises :class:`Interrupted` if a signal arrived since the handlers were installed."""
    if _requested is not None:
        _acted.set()
        raise Interrupted(_requested)
