"""Which worker runs which trial: claims under the folder's lock, and trials after a stop.

Every process that works on a study (a search's worker, a sweep) takes its
trials through :func:`claim`: under the study folder's lock it first fails each
running trial of this machine whose process is gone, then decides what to take,
so no two processes of one machine take the same work. A search's worker takes
trials through :func:`next_trial`, which counts them, so the workers of one machine
never start more than ``--trials``; a search trial stopped by a signal, or whose
worker process was killed, is failed and queued again with its values and run dir
(:func:`requeue`), and the next trial taken continues that run dir from its last
checkpoint. On a database shared by several machines, a search trial whose worker
died on another machine (whose lock files this machine cannot see) is found by its
heartbeats instead (:func:`beating`, ``study.storage_of``). Whichever way, only the
process that fails a trial queues its continuation, so no trial is continued twice.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import socket
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import optuna
from absl import logging
from optuna.storages._heartbeat import BaseHeartbeatThread, get_heartbeat_thread
from optuna.trial import FrozenTrial, TrialState

from mnist_research import interrupts
from mnist_research.studies.study import (
    ERROR,
    WORKER,
    StudySettings,
    locked,
    queue_continuation,
)

# Each worker process holds a lock on its own file in this folder of the study for as long
# as it lives; the operating system releases it however the process ends (SIGKILL too).
_WORKERS_DIR = ".workers"
# New in each process: a restarted container's process has the host name and pid of the one
# before it (pid 1), and must not take that one's lock file, nor its trials, for its own.
_TOKEN = uuid.uuid4().hex[:8]


def counted(study: optuna.Study) -> int:
    """The trials that count towards ``--trials``.

    Completed, pruned and running ones, and those that failed for a reason
    recorded in ``ERROR``; not those stopped by a signal or a killed worker
    (another trial continues each), nor the queued ones until they run.
    """
    counts = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state in counts or (t.state == TrialState.FAIL and ERROR in t.user_attrs)
    )


def claim(
    study: optuna.Study,
    folder: str,
    choose: Callable[[], dict[str, Any] | None],
    orphans: Callable[[optuna.Study, str], object] | None = None,
) -> optuna.Trial | None:
    """A new trial with the user attributes ``choose`` returns; ``None`` when it returns ``None``.

    Under the folder's lock (one process of this machine at a time): first the
    running trials of this machine whose process is gone are failed (``orphans``,
    by default :func:`release_orphans`; a search's :func:`requeue_orphans` also
    queues each again), then ``choose`` reads the study and says what to take.
    The new trial names its process (``WORKER``) and, on a database, records its
    first heartbeat before any signal can stop this one, so it is never left
    running with nothing to tell that its process is gone.
    """
    with locked(folder):
        (orphans or release_orphans)(study, folder)
        attrs = choose()
        if attrs is None:
            return None
        with interrupts.deferred(every=True), warnings.catch_warnings():
            # A database's heartbeats are recorded (``beating``) outside Study.optimize.
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
            trial = study.ask()
            trial.set_user_attr(WORKER, _hold_worker_lock(folder))
            # fail_stale_trials passes over a trial with no heartbeat: one whose worker died
            # on another machine before ``beating`` began would be left running for ever.
            with _heartbeat(trial):
                pass  # the thread records a beat as it starts; leaving the block joins it
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return trial


def next_trial(study: optuna.Study, settings: StudySettings) -> optuna.Trial | None:
    """A new trial while fewer than ``settings.trials`` count; ``None`` when the study is full.

    Counting and asking happen under the folder's lock (:func:`claim`), so the
    workers of one machine never start more trials than asked for. Each running
    trial of this machine whose worker process is gone (killed) is first failed
    and queued again with its values and run dir, which the next trial continues
    from its last checkpoint.
    """
    return claim(
        study,
        settings.folder,
        lambda: {} if counted(study) < settings.trials else None,
        _requeue_gone,
    )


def _requeue_gone(study: optuna.Study, folder: str) -> None:
    """Requeues the trials whose worker is gone: a database's whose heartbeats stopped (any
    machine: ``optuna.storages.fail_stale_trials`` queues them), and this machine's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    requeue_orphans(study, folder)


def requeue(study: optuna.Study, trial: optuna.Trial | FrozenTrial, folder: str) -> bool:
    """Fails ``trial`` (stopped) and queues a trial that continues its run dir; whether it did.

    No signal comes between the two (a trial failed and never continued would
    lose its run). A trial another process finished first (its heartbeats ran
    out) is left as it is: that process queued its continuation.
    """
    with interrupts.deferred(every=True):
        if not fail(study, trial.number):
            return False
        queue_continuation(study, trial, folder)
    return True


def fail(study: optuna.Study, number: int) -> bool:
    """Fails trial ``number``; ``False`` when another process had finished it."""
    try:
        study.tell(number, state=TrialState.FAIL)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
        return False  # finished when read (ValueError), or between the read and the write
    return True


@contextlib.contextmanager
def beating(trial: optuna.Trial) -> Iterator[None]:
    """Records the trial's heartbeat in a thread while the block runs (a database's storage).

    Optuna's own heartbeat thread, the one ``Study.optimize`` runs around each
    trial; with a journal file it does nothing.
    """
    with _heartbeat(trial):
        yield


def _heartbeat(trial: optuna.Trial) -> BaseHeartbeatThread:
    """Optuna's heartbeat thread for ``trial``: a beat as it starts, then one every interval
    until joined; one that does nothing unless the storage has heartbeats (a database's).

    Private names, here alone: Optuna 5 starts this thread only inside ``Study.optimize``,
    with no public way to run it for a trial taken with ``ask``, and a trial's id (what a
    storage's ``record_heartbeat`` takes) is not public either; ``optuna>=5,<6`` pins both.
    """
    return get_heartbeat_thread(trial._trial_id, trial.storage)


def _orphans(study: optuna.Study, folder: str) -> list[FrozenTrial]:
    """The running trials of this machine whose process is gone."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if _of_this_machine(t.user_attrs.get(WORKER, ""))
        and not _worker_alive(folder, t.user_attrs[WORKER])
    ]


def release_orphans(study: optuna.Study, folder: str) -> list[FrozenTrial]:
    """Fails the running trials of this machine whose process is gone; returns those it failed
    (not one another process failed first)."""
    orphans = [t for t in _orphans(study, folder) if fail(study, t.number)]
    for t in orphans:
        logging.warning("Trial %d's process is gone; its work will be taken again", t.number)
    return orphans


def requeue_orphans(study: optuna.Study, folder: str) -> list[int]:
    """Requeues the running trials of this machine whose worker process is gone; their numbers."""
    return [t.number for t in _orphans(study, folder) if requeue(study, t, folder)]


_held: dict[str, object] = {}  # study folder -> the open file this process's lock is on


def _hold_worker_lock(folder: str) -> str:
    """Takes this process's worker lock in ``folder`` (once); returns its name.

    The name is ``host-pid-token``; the lock file goes when the process exits
    cleanly (a killed one's stays, unlocked: its process is gone all the same).
    """
    name = f"{socket.gethostname()}-{os.getpid()}-{_TOKEN}"
    key = os.path.abspath(folder)
    if key not in _held:
        path = os.path.join(key, _WORKERS_DIR, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle = open(path, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        _held[key] = handle
        atexit.register(_let_go, path, handle)
    return name


def _let_go(path: str, handle) -> None:
    """Removes this process's own lock file (the lock goes with its closing)."""
    with contextlib.suppress(FileNotFoundError):  # its folder removed by hand
        os.remove(path)
    handle.close()


def _of_this_machine(worker: str) -> bool:
    """Whether the worker name ``worker`` is of this machine's host.

    The host is compared whole, not split off at a '-' (a host name may hold
    one). ``host-pid`` names a worker of before the token: still found when it dies.
    """
    host = f"{socket.gethostname()}-"
    rest = worker[len(host) :]
    return worker.startswith(host) and re.fullmatch(r"\d+(-[0-9a-f]{8})?", rest) is not None


def _worker_alive(folder: str, name: str) -> bool:
    """Whether the worker ``name`` of this machine still holds its lock."""
    try:
        handle = open(os.path.join(folder, _WORKERS_DIR, name))
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
