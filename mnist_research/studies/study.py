"""A study's storage and its identity (space and base recipe).

A study lives in an Optuna storage: by default a journal file inside the
study's folder (``OUTPUT/STUDY/journal.log``: no server), or any storage URL
Optuna takes (``postgresql+psycopg://...`` for several machines). Every
process that opens the same study name on the same storage shares one study.
The study records its space and base recipe the first time it is opened;
opening it again with another space or recipe is refused, naming the
difference (what a study found is written by ``studies.results``). Nothing here
imports TensorFlow: the command's parent process, which only starts workers and
writes the results, stays light.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import os
import time
import warnings
from collections.abc import Callable, Iterator

import optuna
from absl import logging

from mnist_research.config import flags as experiment_flags
from mnist_research.errors import ConfigError, MnistResearchError, one_line
from mnist_research.studies.space import Space

JOURNAL_FILE = "journal.log"
_LOCK_FILE = ".study.lock"
# User attributes of a trial: its run dir; why it failed (a failure that counts towards
# --trials: refused settings, a diverging loss); that a signal stopped it; the worker
# process that runs it (``host-pid-token``, the token new in each process).
RUN_DIR = "run_dir"
ERROR = "error"
INTERRUPTED = "interrupted"
WORKER = "worker"
# A database's heartbeats. A trial's worker that misses them for GRACE_SECONDS is taken for
# dead: well above the 30 s between beats, so a busy machine's late beat is not a death.
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


class StudyError(MnistResearchError):
    """A study that cannot be opened or continued as asked."""


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What one study is.

    Attributes:
      name: the study's name in its storage (also its folder's name).
      folder: where its trials' run dirs, table and ``best.flags`` go.
      storage: a journal file path or a storage URL.
      space: what is sampled.
      base_flags: the base recipe as a flagfile (``config.flags.flagfile_text``).
      trials: how many trials the study runs (completed and pruned, or running).
    """

    name: str
    folder: str
    storage: str
    space: Space
    base_flags: str
    trials: int


def storage_of(
    url: str,
    folder: str,
    heartbeat_seconds: int = HEARTBEAT_SECONDS,
    grace_seconds: int = GRACE_SECONDS,
):
    """The Optuna storage ``url`` names, for the study in ``folder``: a path (no ``://``) is a
    journal file.

    A database gets Optuna's heartbeats: each running trial's worker records one
    every ``heartbeat_seconds``; a trial whose last is older than ``grace_seconds``
    (its worker died, on whichever machine) is failed by the next worker asking
    for a trial (``optuna.storages.fail_stale_trials``), and that worker alone
    queues its continuation (:func:`queue_continuation`).
    """
    if "://" in url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat_seconds,
                grace_period=grace_seconds,
                heartbeat_stale_trial_callback=functools.partial(queue_continuation, folder=folder),
            )
    backend = optuna.storages.journal.JournalFileBackend(os.path.abspath(url))
    return optuna.storages.JournalStorage(backend)


def queue_continuation(study: optuna.Study, trial, folder: str) -> None:
    """Queues a trial with the failed ``trial``'s values that continues its run dir.

    A trial stopped before it recorded its run dir continues the one it would
    have had, ``folder/trial-<number>``. ``trial``: an ``optuna.Trial`` or a
    ``FrozenTrial``.
    """
    run_dir = trial.user_attrs.get(RUN_DIR) or os.path.join(folder, run_dir_name(trial.number))
    logging.warning("Trial %d stopped before its end; %s will be continued", trial.number, run_dir)
    study.enqueue_trial(trial.params, user_attrs={RUN_DIR: run_dir})


def base_lines(flagfile_text: str) -> list[str]:
    """The ``--flag=value`` lines of a flagfile (its comments left out)."""
    return [line for line in flagfile_text.splitlines() if line.startswith("--")]


def _recipe(flagfile_text: str) -> dict[str, str]:
    """Flag -> value in the base recipe, its paths left out (they differ between machines)."""
    paths = {d.flag for _, _, d in experiment_flags.experiment_settings() if d.path}
    recipe = {}
    for line in base_lines(flagfile_text):
        flag, eq, value = line.lstrip("-").partition("=")
        if not eq:  # --name / --noname
            flag, value = flag.removeprefix("no"), "false" if flag.startswith("no") else "true"
        recipe[flag] = value
    return {flag: value for flag, value in recipe.items() if flag not in paths}


def open_study(settings: StudySettings, sampler=None, pruner=None) -> optuna.Study:
    """Creates the study, or joins it when it exists with the same space and base recipe.

    Raises:
      StudyError: the storage cannot be opened, or the study exists with
        another space or base recipe (each difference named).
    """
    return load_study(
        settings.name,
        settings.storage,
        settings.folder,
        sampler,
        pruner,
        check=lambda study: _record_or_compare(study, settings),
    )


def load_study(
    name: str,
    storage: str,
    folder: str,
    sampler=None,
    pruner=None,
    check: Callable[[optuna.Study], None] | None = None,
) -> optuna.Study:
    """Creates study ``name`` in ``storage`` (maximizing), or loads it; ``check`` then reads it.

    Both under ``folder``'s lock (the folder made if missing).

    Raises:
      StudyError: the storage cannot be opened.
    """
    os.makedirs(folder, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The processes of one machine open the study one at a time: two creating a database's
    # tables or the study at once would collide. Another machine's may: it is tried twice.
    with locked(folder):
        for attempt in (1, 2):
            try:
                study = optuna.create_study(
                    study_name=name,
                    storage=storage_of(storage, folder),
                    sampler=sampler,
                    pruner=pruner,
                    direction="maximize",
                    load_if_exists=True,
                )
                break
            except Exception as e:  # Optuna and SQLAlchemy raise many kinds: one line each
                if attempt == 2 or "://" not in storage:
                    raise StudyError(
                        f"--storage={storage}: cannot open it ({one_line(e)})"
                    ) from None
                time.sleep(1.0)
        if check is not None:
            check(study)
    return study


def _record_or_compare(study: optuna.Study, settings: StudySettings) -> None:
    attrs = study.user_attrs
    space, recipe = settings.space.lines(), _recipe(settings.base_flags)
    if "space" not in attrs:
        study.set_user_attr("space", space)
        study.set_user_attr("base_flags", settings.base_flags)
        return
    diffs = [
        f"another {what} ({'; '.join(found)})"
        for what, found in (
            ("space", _differences(attrs["space"], space, "not searched")),
            ("base recipe", _differences(_recipe(attrs["base_flags"]), recipe, "not set")),
        )
        if found
    ]
    if diffs:
        raise StudyError(
            f"study {settings.name} in {settings.storage} was started with "
            f"{' and '.join(diffs)}; use another --study, or the study's own space and recipe"
        )


def _differences(old: dict[str, str], new: dict[str, str], absent: str) -> list[str]:
    """``name: old -> new`` for every key whose value differs."""
    return [
        f"{key}: {old.get(key, absent)} -> {new.get(key, absent)}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


@contextlib.contextmanager
def locked(folder: str) -> Iterator[None]:
    """Holds the study folder's lock: one process of this machine at a time in the block."""
    with open(os.path.join(folder, _LOCK_FILE), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_dir_name(number: int) -> str:
    return f"trial-{number:03d}"


def check_name(name: str) -> None:
    """Refuses a study name that cannot be a folder name."""
    if not name or name.startswith(".") or not all(c.isalnum() or c in "_.-" for c in name):
        raise ConfigError(f"--study: {name!r} is not a study name (letters, digits, '_', '-', '.')")
