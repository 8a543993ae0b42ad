"""Resuming made natural: the printed resume command, --resume, and an absolute data path."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnist_research import interrupts
from mnist_research.config import DataConfig, ExperimentConfig, TrainConfig
from mnist_research.config.saved import config_from_dict, resume_identity
from mnist_research.files import write_json
from mnist_research.rundir import layout
from mnist_research.training import existing_run, resume
from mnist_research.training.checkpoint_state import CheckpointState
from tests.helpers import REPO, make_digits, run_main


def _args(command: str) -> list[str]:
    """The arguments of a resume command, after ``python -m module`` or the script."""
    words = shlex.split(command)
    return words[3:] if "-m" in words[1:3] else words[1:]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["train.py", "--flagfile=experiments/baseline.flags", "--epochs=3"],
            [
                "--flagfile={cwd}/experiments/baseline.flags",
                "--epochs=3",
                "--run_dir={cwd}/runs/x y",
            ],
        ),
        (
            ["train.py", "--run_dir", "old", "--overwrite", "--seed=1", "--resume", "--noresume"],
            ["--seed=1", "--run_dir={cwd}/runs/x y"],
        ),
        (
            ["train.py", "--run_dir=old", "--nooverwrite", "-run_dir=older", "--data_dir=a b"],
            ["--data_dir={cwd}/a b", "--run_dir={cwd}/runs/x y"],
        ),
        (
            ["train.py", "--data_dir", "/abs/d", "--logdir=r"],
            ["--data_dir", "/abs/d", "--logdir={cwd}/r", "--run_dir={cwd}/runs/x y"],
        ),
    ],
)
def test_resume_command_is_argv_with_the_run_dir(argv, expected):
    """Paths made absolute (issue 26): the printed command works from any folder."""
    command = resume.resume_command("runs/x y", argv)
    assert _args(command) == [e.format(cwd=os.getcwd()) for e in expected]


def test_resume_command_runs_the_interpreter_that_runs(monkeypatch):
    import types

    monkeypatch.setitem(
        sys.modules,
        "__main__",
        types.SimpleNamespace(__spec__=types.SimpleNamespace(name="mnist_research.train")),
    )
    monkeypatch.setattr(sys, "executable", "/opt/venv/bin/python")
    words = shlex.split(resume.resume_command("r", ["x"]))
    assert words[:3] == ["/opt/venv/bin/python", "-m", "mnist_research.train"]


def _write_run(logdir, name, config, finished, mtime):
    run_dir = os.path.join(logdir, name)
    os.makedirs(run_dir)
    layout.save_config(run_dir, config, "")
    write_json(
        os.path.join(run_dir, layout.METRICS_FILE), {"finished": finished, "epochs_completed": 1}
    )
    for path in (layout.CONFIG_FILE, layout.METRICS_FILE):
        os.utime(os.path.join(run_dir, path), (mtime, mtime))
    return run_dir


def test_latest_unfinished_picks_the_newest_matching_run(tmp_path):
    config = ExperimentConfig(experiment="base")
    other_recipe = ExperimentConfig(experiment="base", train=TrainConfig(learning_rate=0.1))
    _write_run(tmp_path, "old", config, False, 1_000)
    newest = _write_run(tmp_path, "new", config, False, 2_000)
    _write_run(tmp_path, "finished", config, True, 3_000)
    _write_run(tmp_path, "other-name", ExperimentConfig(experiment="wide"), False, 4_000)
    _write_run(tmp_path, "other-recipe", other_recipe, False, 5_000)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{")
    assert existing_run.latest_unfinished(str(tmp_path), config) == newest
    assert existing_run.latest_unfinished(str(tmp_path / "missing"), config) is None
    assert existing_run.latest_unfinished(str(tmp_path), ExperimentConfig(experiment="x")) is None


def test_config_json_holds_an_absolute_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig(data=DataConfig(data_dir="data/mnist"))
    layout.save_config(str(tmp_path), config, "")
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["data"]["data_dir"] == str(tmp_path / "data" / "mnist")
    assert resume_identity(config_from_dict(saved)) == resume_identity(config)


EPOCHS = 8


@pytest.mark.slow
def test_interrupt_prints_the_command_that_resumes_and_resume_finds_the_run(tmp_path, monkeypatch):
    # 800 training examples: 25 steps an epoch, seven epochs and the end of the run left
    # when the first checkpoint appears, for SIGINT to land in.
    x, y = make_digits(1000, seed=5)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:300], y_test=y[:300])
    logdir = tmp_path / "runs"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    args = [
        "--flagfile=experiments/smoke.flags",
        f"--data_dir={os.path.relpath(tmp_path, REPO)}",
        f"--logdir={logdir}",
        f"--epochs={EPOCHS}",
        "--batch_size=32",
        "--steps_per_loop=1",
        "--limit_train=0",
        "--nohistograms",
        # The plain step: an XLA compile in this process misses the session's cache (the
        # traced function names differ from a fresh process's), seconds for each run below.
        "--nojit_compile",
    ]
    train = [sys.executable, "-m", "mnist_research.train"]

    # A real process: SIGINT, its exit status and the command it prints (python -m ...).
    process = subprocess.Popen(
        train + args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 180
    while not list(logdir.glob("*/checkpoints/ckpt-1.index")):
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    (run_dir,) = logdir.iterdir()
    started = err.split("To resume this run if it stops: ")[1].splitlines()[0]
    printed = err.split("Resume with: ")[1].splitlines()[0]
    assert printed == started
    # The printed command names every path absolute (issue 26), so it works from any folder.
    absolute = [
        f"--flagfile={os.path.join(REPO, 'experiments', 'smoke.flags')}",
        f"--data_dir={os.path.abspath(tmp_path)}",
    ]
    assert _args(printed) == absolute + args[2:] + [f"--run_dir={run_dir}"]

    # The printed command's arguments, run as printed (in this process), continue the
    # same run; it stops once its next checkpoint is saved, so the run stays unfinished.
    saved = max(
        int(p.name[len("ckpt-") : -len(".index")])
        for p in (run_dir / "checkpoints").glob("ckpt-*.index")
    )
    assert saved < EPOCHS
    original_save = CheckpointState.save

    # The second stop is the Interrupted a SIGINT handler raises, raised here right after
    # the next checkpoint (the real signal and its handler are the first process's).
    def save_then_stop(self, epoch, history):
        original_save(self, epoch, history)
        if epoch == saved + 1:
            raise interrupts.Interrupted(signal.SIGINT)

    with monkeypatch.context() as patch:
        patch.setattr(CheckpointState, "save", save_then_stop)
        continued = run_main("mnist_research.train", *_args(printed))
    assert continued.returncode == 130, continued.stderr[-3000:]
    assert f"Restored {run_dir}" in continued.stderr, continued.stderr[-3000:]
    assert (run_dir / "checkpoints" / f"ckpt-{saved + 1}.index").exists()

    # --resume finds it again, and finishes it.
    result = run_main("mnist_research.train", *args, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"--resume: continuing {run_dir}" in result.stderr
    assert list(logdir.iterdir()) == [run_dir]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["finished"] and len(metrics["history"]["loss"]) == EPOCHS

    # The run's config holds an absolute data path: evaluate works from anywhere.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    evaluated = run_main("mnist_research.evaluate", f"--run_dir={run_dir}", cwd=elsewhere)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert f"accuracy {metrics['test_accuracy']:.4f}" in evaluated.stdout
