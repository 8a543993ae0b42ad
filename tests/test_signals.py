"""SIGINT and SIGTERM stop training cleanly with one line that says how to resume (issue 14)."""

import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnist_research.training import checkpoint_files
from tests.helpers import REPO, make_digits


def _start(data_dir, run_dir):
    command = [sys.executable, "-m", "mnist_research.train", "--flagfile=experiments/smoke.flags",
               f"--data_dir={data_dir}", f"--run_dir={run_dir}", "--epochs=500",
               "--batch_size=32", "--steps_per_loop=1", "--histograms=false", "--overwrite"]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_with_one_line_that_resumes(tmp_path, signum, status):
    x, y = make_digits(1000, seed=3)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:100], y_test=y[:100])
    run_dir = tmp_path / "run"
    process = _start(tmp_path, run_dir)
    deadline = time.time() + 120
    while not (run_dir / "checkpoints" / "ckpt-1.index").exists():
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    time.sleep(0.5)  # into epoch 2 or 3
    process.send_signal(signum)
    sent = time.time()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr[-3000:]
    assert time.time() - sent < 20  # stopped at a step boundary, not at the end of training
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    lines = [line for line in stderr.splitlines() if "Resume with:" in line]
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith(f"{signal.Signals(signum).name}: stopped; the checkpoint of epoch")
    assert f"--run_dir={run_dir}" in lines[0] and "--overwrite" not in lines[0]
    folder = str(run_dir / "checkpoints")
    last = checkpoint_files.read_state(folder)[0]
    assert last >= 1 and f"epoch {last} is kept" in lines[0]
    checkpoint_files.verify(os.path.join(folder, f"ckpt-{last}"))  # whole, every checksum good
    if signum != signal.SIGINT:
        return
    # The printed command resumes the run (here shortened to one more epoch).
    words = shlex.split(lines[0].split("Resume with: ", 1)[1])
    assert words[1:3] == ["-m", "mnist_research.train"]  # python, or its full path
    resumed = subprocess.run([sys.executable, *words[1:], f"--epochs={last + 1}"], cwd=REPO,
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Restored {folder}/ckpt-{last}" in resumed.stderr
    assert f"epoch {last + 1}/{last + 1}" in resumed.stderr and "epoch 1/" not in resumed.stderr
