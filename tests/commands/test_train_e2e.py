"""The train command end to end on tiny data in tmp_path.

Real processes where the process is the point: the session's `finished_run` (what a run
prints), the run on two logical CPUs (devices split before TensorFlow starts, no Python
warning on the terminal) and the one-line errors with and without oneDNN's banner. The
rest calls the command's `main` in this process (`tests.helpers.run_main`): its error lines, its
logged lines and the files it writes are the same.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO, SMOKE, early, run_main, scalars, start

METRIC_KEYS = {
    "test_accuracy",
    "test_loss",
    "epochs_completed",
    "history",
    "train_seconds",
    "examples_per_second",
    "device_name",
    "strategy",
    "num_replicas",
    "tensorflow_version",
}


@pytest.fixture
def train():
    """The train command on the smoke flags, in this process."""

    def run(npz_dir, run_dir, *extra):
        return run_main(
            "mnist_research.train", SMOKE, f"--data_dir={npz_dir}", f"--run_dir={run_dir}", *extra
        )

    return run


def copy_run(run_dir, tmp_path, name="run"):
    """A copy of a run to change (the session's finished run is shared)."""
    copy = str(tmp_path / name)
    shutil.copytree(run_dir, copy)
    return copy


def png_size(path):
    from matplotlib import image

    return image.imread(path).shape


@pytest.mark.slow  # reads the finished run the session trains once
def test_run_dir_holds_everything(finished_run):
    run_dir, result = finished_run
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert METRIC_KEYS <= set(metrics)
    assert metrics["epochs_completed"] == 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(metrics["history"][key]) == 2
    assert metrics["num_replicas"] == 1
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0
    assert f"Test accuracy: {metrics['test_accuracy']:.4f}" in result.stdout
    # Its parent folder is no --logdir of runs: TensorBoard is pointed at the run itself.
    assert result.stdout.rstrip().endswith(f"; tensorboard --logdir {run_dir}")
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "ckpt-2.index"))
    flags_txt = open(os.path.join(run_dir, "flags.txt")).read()
    assert "--epochs=2" in flags_txt and "--hidden_units=256,128,64" in flags_txt
    height, width = png_size(os.path.join(run_dir, "reports", "curves.png"))[:2]
    assert width / height == pytest.approx(18 / 5, rel=0.15) and width > 1000
    assert png_size(os.path.join(run_dir, "reports", "samples.png"))[1] > 500


@pytest.mark.slow  # reads the finished run the session trains once
def test_run_dir_records_the_model_and_the_epoch_selection(finished_run):
    run_dir, _ = finished_run
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["model"]["family"] == "mlp" and config["model"]["conv_filters"] == []
    flags_txt = open(os.path.join(run_dir, "flags.txt")).read()
    assert "--model=mlp" in flags_txt and "--conv_filters" not in flags_txt
    # Without --restore_best the last epoch is exported; the best epoch's weights are
    # kept as their own checkpoint either way.
    best = metrics["best_epoch"]
    assert metrics["history"]["val_accuracy"][best - 1] == metrics["best_val_accuracy"]
    assert metrics["exported_epoch"] == 2 and metrics["stopped_early"] is False
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "best", f"ckpt-{best}.index"))


@pytest.mark.slow  # reads the finished run the session trains once
def test_event_files_have_overlaid_train_and_validation_scalars(finished_run):
    run_dir, _ = finished_run
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    train = scalars(os.path.join(run_dir, "train"))
    val = scalars(os.path.join(run_dir, "validation"))
    for tag in (
        "epoch/loss",
        "epoch/accuracy",
        "epoch/learning_rate",
        "epoch/examples_per_second",
        "step/loss",
        "config/flags",
    ):
        assert tag in train, tag
    assert [s for s, _ in val["epoch/accuracy"]] == [1, 2]
    np.testing.assert_allclose(
        [v for _, v in val["epoch/accuracy"]], metrics["history"]["val_accuracy"], rtol=1e-5
    )
    np.testing.assert_allclose(
        [v for _, v in train["epoch/loss"]], metrics["history"]["loss"], rtol=1e-5
    )


@pytest.mark.slow  # trains an epoch on a copy of the session's finished run
def test_resume_and_finished_run(finished_run, npz_dir, tmp_path, train):
    run_dir = copy_run(finished_run[0], tmp_path)
    metrics_path = os.path.join(run_dir, "metrics.json")
    before = open(metrics_path).read()
    again = train(npz_dir, run_dir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "is complete" in again.stderr
    assert open(metrics_path).read() == before

    # Extending the same run dir to 3 epochs restores epoch 2 and trains one more.
    more = train(npz_dir, run_dir, "--epochs=3")
    assert more.returncode == 0, more.stderr[-2000:]
    assert "Restored" in more.stderr and "epoch 3/3" in more.stderr
    assert "epoch 1/3" not in more.stderr
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["epochs_completed"] == 3
    assert len(metrics["history"]["val_accuracy"]) == 3
    old = json.loads(before)["history"]["val_accuracy"]
    assert metrics["history"]["val_accuracy"][:2] == old


@pytest.mark.slow  # reads the finished run the session trains once
def test_mismatched_run_dir_is_refused(finished_run, npz_dir, tmp_path, train):
    run_dir = copy_run(finished_run[0], tmp_path)
    result = train(npz_dir, run_dir, "--hidden_units=32,16", "--dropout_rates=0.1,0.1")
    assert result.returncode == 1
    assert "different settings" in result.stderr and "hidden_units" in result.stderr


def test_bad_data_dir_is_one_line_error(tmp_path, train):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip")
    result = train(str(tmp_path), str(tmp_path / "run"))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not an .npz" in errors[0]
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "run" / "metrics.json")


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--epochs=0", "epochs"),
        ("--dropout_rates=0.3,0.3", "same length"),
        ("--strategy=tpu", "strategy"),
        ("--validation_split=1.5", "validation_split"),
    ],
)
def test_bad_flags_fail_before_training(tmp_path, npz_dir, flag, message, train):
    result = train(npz_dir, str(tmp_path / "run"), flag)
    assert result.returncode != 0
    assert message in result.stderr
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow  # its own process: logical CPUs are split before TensorFlow starts
def test_mirrored_two_logical_cpus(mirrored_run):
    run_dir, result = mirrored_run
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["num_replicas"] == 2 and metrics["strategy"] == "MirroredStrategy"
    assert "Warning" not in result.stderr + result.stdout  # no Python warnings leak out
    assert metrics["epochs_completed"] == 2
    assert all(np.isfinite(metrics["history"]["loss"]))
    assert metrics["history"]["loss"][1] < metrics["history"]["loss"][0]
    assert metrics["test_examples"] == 200
    assert os.path.exists(os.path.join(run_dir, "reports", "curves.png"))


def test_unwritable_run_dir_is_one_line_error(npz_dir, tmp_path, train):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = train(npz_dir, str(blocker / "run"))
    assert result.returncode == 1
    assert "error:" in result.stderr and "cannot write to the run directory" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # compiles and runs train steps
def test_nan_loss_stops_with_step_and_nonzero_exit(npz_dir, tmp_path, train):
    run_dir = tmp_path / "nan"
    result = train(npz_dir, str(run_dir), "--learning_rate=1e30")
    assert result.returncode == 1
    assert "loss became NaN or Inf at step" in result.stderr
    assert not (run_dir / "metrics.json").exists()
    assert not list((run_dir / "checkpoints").glob("ckpt-*"))


@early
def early_test_batch_not_divisible_by_replicas(npz_dir, folder, environ):
    return start(
        [
            *(sys.executable, "-m", "mnist_research.train", SMOKE),
            f"--data_dir={npz_dir}",
            f"--run_dir={folder / 'run'}",
            "--strategy=mirrored",
            "--num_cpu_devices=2",
            "--batch_size=33",
        ],
        env=environ,
    )


@pytest.mark.slow  # its own process: logical CPUs are split before TensorFlow starts
def test_batch_not_divisible_by_replicas(early_process):
    folder, result = early_process
    assert result.returncode == 1
    assert "batch_size 33 is not divisible by the 2 replicas" in result.stderr
    assert not (folder / "run").exists()  # refused before anything is written


@pytest.mark.parametrize(
    "args, message",
    [
        (["--flagfile=experiments/missing.flags"], "missing.flags"),
        (["--no_such_flag=1"], "no_such_flag"),
    ],
)
def test_flagfile_and_unknown_flag_errors(npz_dir, tmp_path, args, message):
    result = run_main(
        "mnist_research.train", *args, f"--data_dir={npz_dir}", f"--run_dir={tmp_path / 'run'}"
    )
    assert result.returncode != 0 and message in result.stderr
    assert not (tmp_path / "run").exists()


# TF_ENABLE_ONEDNN_OPTS=1 makes TensorFlow print oneDNN's banner on any x86 CPU, =0 on none;
# the banner comes at import, before any flag is read, so each value is checked under one.
@pytest.mark.slow  # a process of its own: what the terminal shows around TensorFlow's import
@pytest.mark.parametrize(
    "flag, message, onednn",
    [
        ("--learning_rate=nan", "learning_rate must be a finite number, got nan", "1"),
        ("--hidden_units=a,b,c", "--hidden_units: expected a comma-separated list", "0"),
        ("--seed=-1", "--seed", "1"),
        ("--device=banana", "--device", "0"),
    ],
)
def test_a_bad_value_is_one_error_line_not_the_help(npz_dir, tmp_path, flag, message, onednn):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user has it
    env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_research.train",
            "--flagfile=experiments/smoke.flags",
            f"--data_dir={npz_dir}",
            f"--run_dir={tmp_path / 'run'}",
            flag,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1, (
        result.stderr[-2000:]
    )
    assert message in result.stderr and "(--help lists the flags)" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # rebuilds a copy of the session's finished run
def test_a_finished_run_with_garbage_metrics_is_rebuilt_by_the_command(
    finished_run, npz_dir, tmp_path, train
):
    run_dir = copy_run(finished_run[0], tmp_path)
    open(os.path.join(run_dir, "metrics.json"), "w").write("garbage{")
    result = train(npz_dir, run_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "metrics.json: damaged" in result.stderr and "epoch 1/" not in result.stderr
    assert f"Restored {run_dir}" in result.stderr  # INFO lines are captured: none is an epoch
    assert json.load(open(os.path.join(run_dir, "metrics.json")))["finished"] is True


@pytest.mark.slow  # trains over a copy of the session's finished run
def test_overwrite_starts_afresh(finished_run, npz_dir, tmp_path, train):
    run_dir = tmp_path / "run"
    copy_run(finished_run[0], tmp_path)  # a finished 2-epoch run of other settings
    again = train(
        npz_dir,
        str(run_dir),
        "--epochs=1",
        "--hidden_units=32,16,8",
        "--overwrite",
        f"--logdir={tmp_path}",
    )
    assert again.returncode == 0, again.stderr[-2000:]
    # A run in --logdir: TensorBoard is pointed at --logdir, beside the other runs.
    assert again.stdout.rstrip().endswith(f"; tensorboard --logdir {tmp_path}")
    assert "Restored" not in again.stderr and "epoch 1/1" in again.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["hidden_units"] == [32, 16, 8]


# The train command as `python -m` runs it, then the package's modules it loaded.
_MODULES_OF_A_RUN = """
import atexit, runpy, sys
loaded = lambda: sorted(m for m in sys.modules if m.startswith("mnist_research."))
atexit.register(lambda: print("MODULES", *loaded()))
sys.argv = ["mnist_research.train", *sys.argv[1:]]
runpy.run_module("mnist_research.train", run_name="__main__", alter_sys=True)
"""
# Needed only by a run dir that already holds something, or by a flag the run does not set.
_NOT_FOR_A_FRESH_RUN = {
    "mnist_research.training.existing_run",
    "mnist_research.rundir.existing",
    "mnist_research.rundir.records",
    "mnist_research.rundir.restore",
    "mnist_research.training.strategies",
    "mnist_research.training.profiler",
    "mnist_research.command_help",
    "mnist_research.data.idx",
    "mnist_research.data.download",
    "mnist_research.data.augment",
    "mnist_research.model.cnn",
    "mnist_research.model.linear",
}


@early
def early_test_a_fresh_run_loads_only_what_it_uses(npz_dir, folder, environ):
    arguments = [SMOKE, f"--data_dir={npz_dir}", f"--run_dir={folder / 'run'}", "--epochs=1"]
    return start([sys.executable, "-c", _MODULES_OF_A_RUN, *arguments], env=environ)


@pytest.mark.slow
def test_a_fresh_run_loads_only_what_it_uses(early_process):
    folder, result = early_process
    run_dir = str(folder / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(result.stdout.split("MODULES", 1)[1].split())
    assert not loaded & _NOT_FOR_A_FRESH_RUN
    # The signal watch thread's stop line imports nothing: its modules are loaded by then.
    assert {"mnist_research.training.resume", "mnist_research.rundir.layout"} <= loaded
    assert os.path.exists(os.path.join(run_dir, "metrics.json"))
