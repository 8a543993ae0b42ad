"""SIGINT and SIGTERM stop training cleanly with one line that says how to resume (issue 14)."""

import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnist_research.rundir import layout, restore
from tests.helpers import REPO, make_digits, run_main


def _start(data_dir, run_dir):
    command = [
        sys.executable,
        "-m",
        "mnist_research.train",
        "--flagfile=experiments/smoke.flags",
        f"--data_dir={data_dir}",
        f"--run_dir={run_dir}",
        "--epochs=500",
        "--batch_size=32",
        "--steps_per_loop=1",
        "--histograms=false",
        "--overwrite",
        # The plain step: the resume runs in this process, where an XLA compile misses the
        # session's cache (the traced function names differ from a fresh process's).
        "--nojit_compile",
    ]
    return subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130)])
def test_signal_stops_with_one_line_that_resumes(tmp_path, signum, status):
    """SIGTERM takes the same path: test_sigterm_during_a_save_stops_after_it, in process."""
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
    last = layout.read_state(folder)[0]
    assert last >= 1 and f"epoch {last} is kept" in lines[0]
    restore.verify(os.path.join(folder, f"ckpt-{last}"))  # whole, every checksum good
    if signum != signal.SIGINT:
        return
    # The printed command resumes the run (here shortened to one more epoch); the resume
    # needs no process of its own.
    words = shlex.split(lines[0].split("Resume with: ", 1)[1])
    assert words[1:3] == ["-m", "mnist_research.train"]  # python, or its full path
    resumed = run_main("mnist_research.train", *words[3:], f"--epochs={last + 1}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Restored {folder}/ckpt-{last}" in resumed.stderr
    assert f"epoch {last + 1}/{last + 1}" in resumed.stderr and "epoch 1/" not in resumed.stderr


def test_sigterm_during_a_save_stops_after_it_with_exit_status_143(npz_dir, tmp_path, monkeypatch):
    """A signal inside the epoch loop waits for the checkpoint being saved, then stops."""
    import tensorflow as tf

    from mnist_research import interrupts
    from mnist_research.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
    from mnist_research.training import runner
    from mnist_research.training.checkpoint_state import CheckpointState

    original_save = CheckpointState.save

    def save_then_signal(self, epoch, history):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives before the save below has begun
        original_save(self, epoch, history)

    monkeypatch.setattr(CheckpointState, "save", save_then_signal)
    config = ExperimentConfig(
        data=DataConfig(data_dir=npz_dir),
        model=ModelConfig(hidden_units=(8,), dropout_rates=(0.0,)),
        train=TrainConfig(epochs=3, batch_size=64, histograms=False, jit_compile=False),
    )
    with pytest.raises(interrupts.Interrupted) as stopped:
        with interrupts.handle_signals():
            runner.train_and_evaluate(
                config, str(tmp_path / "run"), verbose=False, strategy=tf.distribute.get_strategy()
            )
    assert stopped.value.exit_status == 143 and stopped.value.name == "SIGTERM"
    folder = str(tmp_path / "run" / "checkpoints")
    assert layout.read_state(folder)[0] == 1  # epoch 1 saved whole, epoch 2 not run
    restore.verify(os.path.join(folder, "ckpt-1"))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_the_interrupted_line_names_the_checkpoint_and_the_command(tmp_path, capsys, monkeypatch):
    from mnist_research import interrupts, train

    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "checkpoint").write_text('model_checkpoint_path: "ckpt-4"\n')
    monkeypatch.setattr(sys, "argv", ["/x/train.py", "--epochs=9"])
    train._report_interrupted(interrupts.Interrupted(signal.SIGTERM), str(tmp_path / "run"))
    from mnist_research.training import resume

    again = resume.resume_command(str(tmp_path / "run"), sys.argv)  # its own tests: test_run_dir
    assert again.endswith(f" --epochs=9 --run_dir={tmp_path / 'run'}")
    assert capsys.readouterr().err == (
        f"SIGTERM: stopped; the checkpoint of epoch 4 is kept. Resume with: {again}\n"
    )


def test_a_held_block_is_not_split_by_a_second_signal():
    from mnist_research import interrupts

    done = []
    with pytest.raises(interrupts.Interrupted) as stopped, interrupts.handle_signals():
        with interrupts.deferred(every=True):  # as a new trial and the name of its process
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("both written")
    assert done == ["both written"] and stopped.value.signum == signal.SIGTERM


_BUSY_MAIN_THREAD = """
import sys, time
from mnist_research import interrupts
with interrupts.handle_signals(lambda e: f"{e.name}: the stop line"):
    with interrupts.deferred():  # as the epoch loop: a signal waits for check()...
        print("busy", flush=True)
        time.sleep(60)  # ...which a main thread blocked in one long call never reaches
print("never stopped", flush=True)
"""


def test_a_signal_acts_within_a_second_while_the_main_thread_is_busy():
    process = subprocess.Popen(
        [sys.executable, "-c", _BUSY_MAIN_THREAD],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "busy\n"
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    stdout, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 1.5, "the signal waited for the main thread"
    assert process.returncode == 143 and stderr == "SIGTERM: the stop line\n"
    assert "never stopped" not in stdout


@pytest.mark.slow
def test_sigterm_before_the_first_step_of_ten_million_epochs_stops_within_a_second(tmp_path):
    """Every epoch's order used to be drawn up front (gigabytes, minutes), and a signal then
    waited for the first step boundary, after XLA's compilation of the step."""
    x, y = make_digits(1000, seed=3)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:100], y_test=y[:100])
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mnist_research.train",
            "--flagfile=experiments/cnn.flags",  # XLA compiles its first step for seconds
            "--flagfile=experiments/smoke.flags",
            f"--data_dir={tmp_path}",
            f"--run_dir={run_dir}",
            "--epochs=10000000",
            "--lr_schedule=constant",
            "--jit_compile",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = ""
    for line in process.stderr:  # logged as the epoch loop starts: its first step compiles
        stderr += line
        if "To resume this run if it stops" in line:
            break
    time.sleep(0.3)
    assert not (run_dir / "checkpoints" / "ckpt-1.index").exists(), stderr[-2000:]
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    for line in process.stderr:  # until the stop line: the signal has acted
        stderr += line
        if line.startswith("SIGTERM: stopped"):
            break
    assert time.monotonic() - sent < 1.2, stderr[-2000:]
    stderr += process.communicate(timeout=60)[1]
    assert process.returncode == 143, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.startswith("SIGTERM: stopped")]
    assert len(lines) == 1 and "Resume with:" in lines[0], stderr[-2000:]


def test_the_watch_threads_stop_line_imports_nothing(tmp_path, monkeypatch):
    from mnist_research import interrupts, train
    from mnist_research.training import resume  # loaded before a run dir is chosen

    monkeypatch.setattr(sys, "argv", ["/x/train.py"])
    before = set(sys.modules)
    line = train._interrupted_line(
        interrupts.Interrupted(signal.SIGINT), str(tmp_path / "run"), loaded_only=True
    )
    assert set(sys.modules) == before
    assert line == resume.stop_line("SIGINT", str(tmp_path / "run"), sys.argv)
    assert line.startswith("SIGINT: stopped; no epoch had finished")
