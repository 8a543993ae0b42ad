"""A sweep as a study: each (experiment, seed) cell a trial, taken by the first process to ask.

The study lives in ``OUTPUT/sweep.journal`` (a journal file: no server). Every
sweep process on that output takes cells through :func:`claims.claim`, under
the output folder's lock: the first cell of its grid that no process is running
(an orphan's, whose process was killed, is failed first and so is free again)
and whose run dir no process is training in (the run dir's lock: the training
child of a killed sweep goes on to the end). It trains the cell with
``sweep_runs.run_one`` in a child process (a finished run is reused, an
interrupted one resumed; ``OUTPUT/<experiment>-seed<S>`` as always) and tells
the study how it ended. With no cell left to take, it waits while cells of its
grid run in other processes, then returns every cell's final metrics, so each
sweep process writes the complete table.

A cell is done when its last trial completed and its run dir still holds a run
finished with this sweep's settings; a run dir that a sweep without the journal
(an older version) finished has no trial yet, so it is taken and reused, not
trained again. A cell whose training failed (``ERROR``) in another process since
this one started is not taken again by this one: it reports it and stops
(rerunning the sweep takes it again).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from typing import Any

import optuna
from absl import logging
from optuna.trial import FrozenTrial, TrialState

from mnist_research import interrupts
from mnist_research.analysis import sweep_runs
from mnist_research.errors import MnistResearchError, one_line
from mnist_research.rundir import records
from mnist_research.studies import claims
from mnist_research.studies import study as study_lib

JOURNAL_FILE = "sweep.journal"
STUDY_NAME = "sweep"
# A trial's user attribute: the cell's run dir name, ``<experiment>-seed<S>``.
CELL = "cell"
# How often a sweep with nothing left to take looks at the cells other processes run.
POLL_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a sweep."""

    experiment: str
    seed: int
    flagfile: str
    run_dir: str

    @property
    def name(self) -> str:
        return os.path.basename(self.run_dir)


def run_grid(
    experiments: list[str],
    seeds: list[int],
    experiments_dir: str,
    output: str,
    data_dir: str | None = None,
    extra: list[str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every (experiment, seed) run into ``OUTPUT/<experiment>-seed<S>``, shared with other sweeps.

    All flagfiles, and the flags of ``extra``, are checked before the study is
    opened (nothing is written before).

    Returns:
      Experiment → the final metrics of its runs, one per seed.

    Raises:
      MnistResearchError: a run failed here (the first one), or in another
        process (all of them, in one line).
    """
    extra = list(extra or [])
    sweep_runs.check_extra(extra)
    paths = {name: sweep_runs.flagfile_path(experiments_dir, name) for name in experiments}
    cells = [
        Cell(name, seed, paths[name], os.path.join(output, f"{name}-seed{seed}"))
        for name in experiments
        for seed in seeds
    ]
    study = study_lib.load_study(
        STUDY_NAME,
        os.path.join(output, JOURNAL_FILE),
        output,
        sampler=optuna.samplers.RandomSampler(),  # a cell samples nothing
    )
    done = _Grid(study, output, cells, data_dir, extra).run()
    return {name: [done[c.name] for c in cells if c.experiment == name] for name in experiments}


@dataclasses.dataclass
class _Grid:
    study: optuna.Study
    folder: str
    cells: list[Cell]
    data_dir: str | None
    extra: list[str]
    started: datetime.datetime = dataclasses.field(default_factory=datetime.datetime.now)
    done: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # What the last look at the study found: cells running elsewhere, cells failed elsewhere.
    running: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)

    def run(self) -> dict[str, dict[str, Any]]:
        """Takes free cells until none is left, waiting for those run elsewhere; cell → metrics."""
        by_name = {c.name: c for c in self.cells}
        waiting_for: list[str] = []
        while True:
            trial = claims.claim(self.study, self.folder, self._free_cell)
            if trial is not None:
                self._train(trial, by_name[trial.user_attrs[CELL]])
            elif self.running:
                if self.running != waiting_for:
                    waiting_for = self.running
                    logging.info(
                        "Waiting for %s (running in another process)", ", ".join(waiting_for)
                    )
                time.sleep(POLL_SECONDS)
            else:
                break
        if self.failed:
            raise MnistResearchError(f"failed in another sweep process: {'; '.join(self.failed)}")
        return self.done

    def _free_cell(self) -> dict[str, str] | None:
        """The user attributes of the first free cell (``None``: none); notes the others."""
        latest: dict[str, FrozenTrial] = {}
        for t in sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number):
            if CELL in t.user_attrs:
                latest[t.user_attrs[CELL]] = t
        self.running, self.failed, free = [], [], None
        for cell in (c for c in self.cells if c.name not in self.done):
            trial = latest.get(cell.name)
            state = trial.state if trial is not None else None
            if state == TrialState.RUNNING:
                self.running.append(cell.name)
            elif self._failed_elsewhere(trial):
                self.failed.append(trial.user_attrs[study_lib.ERROR])
            elif state == TrialState.COMPLETE and (metrics := self._finished(cell)) is not None:
                logging.info("Reusing finished run %s (same settings)", cell.run_dir)
                self.done[cell.name] = metrics
            elif records.holder(cell.run_dir) is not None:
                # Trained by a process the study does not know: the training child of a
                # killed sweep (it goes on to the end), or a train command started by hand.
                self.running.append(cell.name)
            elif free is None:
                free = cell
        return None if free is None else {CELL: free.name, study_lib.RUN_DIR: free.run_dir}

    def _failed_elsewhere(self, trial: FrozenTrial | None) -> bool:
        return (
            trial is not None
            and trial.state == TrialState.FAIL
            and study_lib.ERROR in trial.user_attrs
            and trial.datetime_complete is not None
            and trial.datetime_complete >= self.started
        )

    def _finished(self, cell: Cell) -> dict[str, Any] | None:
        return sweep_runs.finished_run(
            cell.flagfile, cell.seed, cell.run_dir, self.data_dir, self.extra
        )

    def _train(self, trial: optuna.Trial, cell: Cell) -> None:
        """Runs the cell (``run_one``: reused, resumed or trained) and tells the study."""
        try:
            metrics = sweep_runs.run_one(
                cell.flagfile, cell.seed, cell.run_dir, self.data_dir, self.extra
            )
        except interrupts.Interrupted:
            # Free again: the next sweep process to ask resumes it from its last checkpoint.
            trial.set_user_attr(study_lib.INTERRUPTED, True)
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as e:
            trial.set_user_attr(study_lib.ERROR, one_line(e))
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        self.study.tell(trial, metrics["test_accuracy"])
        self.done[cell.name] = metrics
