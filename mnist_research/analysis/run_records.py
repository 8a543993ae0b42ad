"""Reading run directories back for listing and comparing, without TensorFlow.

The one module of ``analysis`` that reads run dirs through the ``rundir``
package (which decides whether a run is finished and refuses
damaged files); ``runs``, ``compare`` and ``--run_dir=latest`` go through it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from mnist_research.errors import MnistResearchError, RunDirError
from mnist_research.rundir import layout, records

LATEST = "latest"
"""The ``--run_dir`` value that names the newest finished run under ``--logdir``."""

# What an unreadable or foreign file can raise while a run dir is read; none escapes a listing.
_READ_ERRORS = (MnistResearchError, OSError, ValueError, TypeError, KeyError, AttributeError)


@dataclasses.dataclass
class RunRecord:
    """A run dir's configuration and metrics as stored.

    Attributes:
      path: the run dir.
      name: its path relative to the folder it was found under (its base name otherwise).
      config: the resolved configuration (``config.json``) as a dict.
      metrics: ``metrics.json`` (``{}`` before the first epoch ends).
      finished: whether the run wrote its final metrics.
    """

    path: str
    name: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    finished: bool

    @property
    def history(self) -> dict[str, list[float]]:
        history = self.metrics.get("history")
        return history if isinstance(history, dict) else {}

    @property
    def epochs_done(self) -> int:
        done = self.metrics.get("epochs_completed")
        return done if isinstance(done, int) else len(self.history.get("loss") or [])

    @property
    def best_val_accuracy(self) -> float | None:
        best = self.metrics.get("best_val_accuracy")
        values = self.history.get("val_accuracy") or []
        return (
            float(best)
            if isinstance(best, (int, float))
            else (float(max(values)) if values else None)
        )

    @property
    def started(self) -> float:
        """When the run was started: the modification time of its ``config.json``."""
        return os.path.getmtime(os.path.join(self.path, layout.CONFIG_FILE))


def read_run(run_dir: str, name: str | None = None) -> RunRecord:
    """A run dir's record, finished or not.

    Raises:
      RunDirError: ``run_dir`` holds no ``config.json``; or (``DamagedFileError``)
        ``config.json`` or ``metrics.json`` is damaged.
    """
    config = records.load_config(run_dir)
    if config is None:
        raise RunDirError(
            f"{os.path.join(run_dir, layout.CONFIG_FILE)}: not found; is {run_dir} a run directory?"
        )
    finished = records.finished_metrics(run_dir)
    if finished is None:
        metrics = records.read_json(os.path.join(run_dir, layout.METRICS_FILE)) or {}
        if not isinstance(metrics, dict):
            raise RunDirError(f"{run_dir}: metrics.json is not a JSON object")
    return RunRecord(
        run_dir,
        name or os.path.basename(os.path.normpath(run_dir)),
        config.to_dict(),
        finished if finished is not None else metrics,
        finished is not None,
    )


def read_finished_run(run_dir: str) -> RunRecord:
    """A finished run's record.

    Raises:
      RunDirError: not a run dir, a damaged one, or a run that has not finished.
    """
    record = read_run(run_dir)
    if not record.finished:
        raise RunDirError(f"{run_dir}: not a finished run (no final metrics.json)")
    return record


@dataclasses.dataclass
class Listing:
    """The runs found under a folder, and what else was there.

    Attributes:
      runs: run records, oldest first.
      foreign: paths (relative to the folder) of folders holding no run.
      damaged: ``path: reason`` of run dirs that could not be read.
    """

    runs: list[RunRecord]
    foreign: list[str]
    damaged: list[str]

    def skipped_line(self) -> str | None:
        """One line about what is not listed, or ``None`` when everything was a run."""
        parts = []
        if self.damaged:
            parts.append(
                f"{len(self.damaged)} damaged ({'; '.join(self.damaged[:3])}"
                f"{'; ...' if len(self.damaged) > 3 else ''})"
            )
        if self.foreign:
            parts.append(
                f"{len(self.foreign)} not runs ({', '.join(self.foreign[:5])}"
                f"{', ...' if len(self.foreign) > 5 else ''})"
            )
        return f"skipped: {', '.join(parts)}" if parts else None


def find_runs(logdir: str, depth: int = 2) -> Listing:
    """Every run dir under ``logdir``: its folders, and theirs (a sweep's) up to ``depth``.

    A folder is a run when it holds ``config.json``; a folder that holds none and no
    run below it is foreign. Files and hidden entries are ignored. Nothing raises
    for a damaged or foreign entry: each is recorded in the listing.

    Raises:
      RunDirError: ``logdir`` is not a readable folder.
    """
    if not os.path.isdir(logdir):
        raise RunDirError(
            f"{logdir}: no such folder (--logdir names the folder that holds the run dirs)"
        )
    listing = Listing([], [], [])
    _scan(logdir, "", depth, listing)
    listing.runs.sort(key=lambda r: (_started_or_zero(r), r.name))
    return listing


def _scan(root: str, relative: str, depth: int, listing: Listing) -> bool:
    """Adds the runs under ``root/relative`` to ``listing``; whether any entry was a run dir."""
    folder = os.path.join(root, relative) if relative else root
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        if not relative:
            raise RunDirError(f"{folder}: cannot list ({e.strerror or e})") from None
        listing.damaged.append(f"{relative}: cannot list ({e.strerror or e})")
        return True
    found = False
    for entry in names:
        path = os.path.join(folder, entry)
        name = os.path.join(relative, entry) if relative else entry
        if entry.startswith(".") or not os.path.isdir(path):
            continue
        if os.path.lexists(os.path.join(path, layout.CONFIG_FILE)):
            found = True
            try:
                listing.runs.append(read_run(path, name))
            except _READ_ERRORS as e:
                listing.damaged.append(f"{name}: {_reason(e)}")
        elif depth > 1 and _scan(root, name, depth - 1, listing):
            found = True
        else:
            listing.foreign.append(name)
    return found


def _reason(error: BaseException) -> str:
    path, reason = getattr(error, "path", None), getattr(error, "reason", None)
    text = (
        f"{os.path.basename(path)} {reason}"
        if path and reason
        else (str(error) or type(error).__name__)
    )
    return text.splitlines()[0][:120]


def _started_or_zero(record: RunRecord) -> float:
    try:
        return record.started
    except OSError:
        return 0.0


def latest_finished(logdir: str) -> str:
    """The newest finished run under ``logdir``: the one whose final metrics were written last.

    Raises:
      RunDirError: ``logdir`` does not exist or holds no finished run.
    """
    finished = [r for r in find_runs(logdir).runs if r.finished]

    def written(record: RunRecord) -> float:
        return os.path.getmtime(os.path.join(record.path, layout.METRICS_FILE))

    if not finished:
        raise RunDirError(
            f"--run_dir={LATEST}: no finished run under {logdir} "
            f"(python -m mnist_research.runs --logdir={logdir} lists them)"
        )
    return max(finished, key=written).path


def resolve_run_dir(run_dir: str, logdir: str) -> str:
    """``run_dir`` itself, or the newest finished run under ``logdir`` for ``latest``.

    A folder actually named ``latest`` in the working directory is not shadowed:
    ``./latest`` names it.
    """
    return latest_finished(logdir) if run_dir == LATEST else run_dir
