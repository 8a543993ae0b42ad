"""The sweep's study: its cells taken once across processes, reused, failed, taken again."""

import datetime
import os
import re
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from optuna.trial import TrialState

from mnist_research.analysis import sweep_runs
from mnist_research.errors import MnistResearchError
from mnist_research.rundir import lock
from mnist_research.studies import claims, grid
from mnist_research.studies import study as study_lib
from tests.helpers import REPO, early, make_digits, start, write_finished_run

EXPERIMENTS = os.path.join(REPO, "experiments")
SMOKE = os.path.join(EXPERIMENTS, "smoke.flags")


def _finish_cells(output, *seeds, accuracy=0.5):
    """Each smoke cell's run dir as a finished run with the sweep's settings (no training)."""
    for seed in seeds:
        config = sweep_runs._command_config(SMOKE, seed, None, [])
        write_finished_run(os.path.join(output, f"smoke-seed{seed}"), config, accuracy)


def _journal(output):
    return study_lib.load_study(grid.STUDY_NAME, os.path.join(output, grid.JOURNAL_FILE), output)


def _cells(study):
    """Cell -> the states of its trials, in order."""
    states = {}
    for t in sorted(study.get_trials(), key=lambda t: t.number):
        states.setdefault(t.user_attrs[grid.CELL], []).append(t.state)
    return states


def test_runs_a_sweep_without_the_journal_finished_are_reused_not_trained(tmp_path):
    output = str(tmp_path / "out")
    _finish_cells(output, 1, 2, accuracy=0.25)  # as an older sweep left them
    runs = grid.run_grid(["smoke"], [1, 2], EXPERIMENTS, output)
    # Trained again, they would hold other accuracies (and with no data here, fail).
    assert [(m["seed"], m["test_accuracy"]) for m in runs["smoke"]] == [(1, 0.25), (2, 0.25)]
    complete = [TrialState.COMPLETE]
    assert _cells(_journal(output)) == {"smoke-seed1": complete, "smoke-seed2": complete}
    # Again: the journal says both are done; no cell is taken (no new trial).
    assert grid.run_grid(["smoke"], [1, 2], EXPERIMENTS, output) == runs
    assert len(_journal(output).get_trials()) == 2


def _fail(study, cell, error):
    trial = study.ask()
    trial.set_user_attr(grid.CELL, cell)
    trial.set_user_attr(study_lib.ERROR, error)
    study.tell(trial, state=TrialState.FAIL)


def test_a_cell_failed_elsewhere_is_named_and_one_failed_before_is_taken_again(tmp_path):
    output = str(tmp_path / "out")
    _finish_cells(output, 1, 2)
    study = _journal(output)
    _fail(study, "smoke-seed1", "smoke-seed1: training failed (exit 1); rerun the sweep")
    started = datetime.datetime.now()  # this sweep process starts
    _fail(study, "smoke-seed2", "smoke-seed2: training failed (exit 1); rerun the sweep")
    cells = [
        grid.Cell("smoke", seed, SMOKE, os.path.join(output, f"smoke-seed{seed}"))
        for seed in (1, 2)
    ]
    sweep = grid._Grid(study, output, cells, None, [], started=started)
    with pytest.raises(MnistResearchError) as error:
        sweep.run()
    assert str(error.value) == (
        "failed in another sweep process: smoke-seed2: training failed (exit 1); rerun the sweep"
    )
    # The failure from before this process started was taken again (here: reused).
    assert list(sweep.done) == ["smoke-seed1"]
    assert _cells(study)["smoke-seed1"] == [TrialState.FAIL, TrialState.COMPLETE]


_KILLED_SWEEP = """
import os, sys
from mnist_research.studies import claims, grid
from mnist_research.studies import study as study_lib
output = sys.argv[1]
study = study_lib.load_study(grid.STUDY_NAME, os.path.join(output, grid.JOURNAL_FILE), output)
claims.claim(study, output, lambda: {grid.CELL: "smoke-seed1"})
os.kill(os.getpid(), 9)  # as a sweep killed while its cell trains
"""


def test_the_cell_of_a_killed_sweep_is_taken_again(tmp_path):
    output = str(tmp_path / "out")
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_SWEEP, output], cwd=REPO, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    study = _journal(output)
    assert _cells(study) == {"smoke-seed1": [TrialState.RUNNING]}
    assert claims.claim(study, output, lambda: None) is None  # fails the orphan first
    assert _cells(study) == {"smoke-seed1": [TrialState.FAIL]}
    _finish_cells(output, 1)  # what its resumed training ends with
    runs = grid.run_grid(["smoke"], [1], EXPERIMENTS, output)
    assert runs["smoke"][0]["test_accuracy"] == 0.5
    assert _cells(study) == {"smoke-seed1": [TrialState.FAIL, TrialState.COMPLETE]}


def test_a_cell_trained_by_a_process_the_study_does_not_know_is_waited_for(tmp_path, monkeypatch):
    """The training child of a killed sweep, or a train command by hand, holds the run dir."""
    monkeypatch.setattr(grid, "POLL_SECONDS", 0.1)
    output = str(tmp_path / "out")
    run_dir = os.path.join(output, "smoke-seed1")
    os.makedirs(run_dir)
    training = lock.RunDirLock(run_dir).__enter__()

    def finished():  # the training ends: a finished run, the lock released
        _finish_cells(output, 1)
        training.__exit__(None, None, None)

    timer = threading.Timer(1.0, finished)
    timer.start()
    try:
        runs = grid.run_grid(["smoke"], [1], EXPERIMENTS, output)
    finally:
        timer.cancel()
        training.__exit__(None, None, None)
    assert runs["smoke"][0]["test_accuracy"] == 0.5  # reused once it finished, not trained
    assert _cells(_journal(output)) == {"smoke-seed1": [TrialState.COMPLETE]}


@early
def early_test_two_sweeps_on_one_output_share_the_runs_and_both_write_the_whole_table(
    npz_dir, folder, environ
):
    x, y = make_digits(600, seed=3)
    np.savez(folder / "mnist.npz", x_train=x, y_train=y, x_test=x[:100], y_test=y[:100])
    args = [
        *(sys.executable, "-m", "mnist_research.sweep"),
        "--experiments=smoke",
        "--seeds=1,2",
        f"--data_dir={folder}",
        f"--output={folder / 'out'}",
        "--",
        "--epochs=1",
        "--nohistograms",
        "--nojit_compile",
    ]
    return [start(args, env=environ) for _ in range(2)]


@pytest.mark.slow
def test_two_sweeps_on_one_output_share_the_runs_and_both_write_the_whole_table(early_process):
    folder, sweeps = early_process
    output = folder / "out"
    for sweep in sweeps:
        assert sweep.returncode == 0, sweep.stderr[-3000:]
        assert re.search(r"^\| smoke \| 2 \|", sweep.stdout, re.MULTILINE), sweep.stdout
    # Each cell trained by one process only: one training command, one trial, per cell.
    trained = [
        re.search(r"--run_dir=(\S+)", line).group(1)
        for sweep in sweeps
        for line in sweep.stderr.splitlines()
        if line.startswith("Running ") and "mnist_research.train" in line
    ]
    assert sorted(os.path.basename(d) for d in trained) == ["smoke-seed1", "smoke-seed2"]
    complete = [TrialState.COMPLETE]
    assert _cells(_journal(str(output))) == {"smoke-seed1": complete, "smoke-seed2": complete}
    assert "| smoke | 2 |" in (output / "results.md").read_text()
