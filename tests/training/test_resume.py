"""A run SIGKILLed mid-epoch resumes: no epoch lost or duplicated, TensorBoard steps monotonic."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from tests.helpers import REPO, make_digits, run_main

pytestmark = pytest.mark.slow

EPOCHS = 6


def _args(data_dir, run_dir):
    return [
        "--flagfile=experiments/smoke.flags",
        f"--data_dir={data_dir}",
        f"--run_dir={run_dir}",
        f"--epochs={EPOCHS}",
        "--batch_size=32",
        "--steps_per_loop=1",
        "--summary_every_steps=10",
        "--limit_train=0",
        # The plain step: the resume runs in this process, where an XLA compile misses the
        # session's cache (the traced function names differ from a fresh process's).
        "--nojit_compile",
    ]


def _event_steps(folder, prefix):
    steps = {}
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        acc = event_accumulator.EventAccumulator(
            path, size_guidance={"tensors": 0}, purge_orphaned_data=False
        )
        acc.Reload()
        for tag in acc.Tags()["tensors"]:
            if tag.startswith(prefix):
                steps.setdefault(tag, []).extend(e.step for e in acc.Tensors(tag))
    return steps


def test_sigkill_mid_epoch_then_resume(tmp_path):
    x, y = make_digits(4000, seed=5)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:300], y_test=y[:300])
    run_dir = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # A real process: SIGKILL mid-epoch.
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_research.train", *_args(tmp_path, run_dir)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (run_dir / "checkpoints" / "ckpt-2.index").exists():
        assert process.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline, "no second checkpoint within 120 s"
        time.sleep(0.02)
    time.sleep(0.3)  # Into epoch 3.
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    killed = json.loads((run_dir / "metrics.json").read_text())
    assert not killed["finished"] and 2 <= killed["epochs_completed"] < EPOCHS

    # The same command resumes it; that needs no process of its own.
    result = run_main("mnist_research.train", *_args(tmp_path, run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Restored" in result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["finished"] and metrics["epochs_completed"] == EPOCHS
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"):
        assert len(metrics["history"][key]) == EPOCHS
    assert metrics["history"]["val_accuracy"][:2] == killed["history"]["val_accuracy"][:2]
    assert metrics["test_accuracy"] > 0.9  # The task is easy; a broken resume would not be.
    assert os.path.exists(run_dir / "checkpoints" / f"ckpt-{EPOCHS}.index")

    epoch_steps = _event_steps(run_dir / "validation", "epoch/")
    assert epoch_steps["epoch/accuracy"] == list(range(1, EPOCHS + 1))
    step_steps = _event_steps(run_dir / "train", "step/")["step/loss"]
    assert step_steps == sorted(set(step_steps)), "step summaries repeat or go backwards"
    assert step_steps[-1] <= EPOCHS * (3200 // 32)
