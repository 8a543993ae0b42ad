"""`runs` (the run list) and `--run_dir=latest` for evaluate, predict and report."""

import fcntl
import json
import os
import shutil
import threading

import pytest

from mnist_research.analysis import run_list, run_records
from mnist_research.config import ExperimentConfig
from mnist_research.config.registry import HISTORY_KEYS
from mnist_research.errors import RunDirError
from mnist_research.rundir import records
from mnist_research.rundir.lock import RunDirLock
from tests.helpers import run_main, run_module


def _run_dir(
    folder,
    experiment="baseline",
    family="mlp",
    epochs=3,
    done=3,
    finished=True,
    test_accuracy=0.97,
    mtime=None,
):
    folder.mkdir(parents=True)
    config = ExperimentConfig().to_dict()
    config["experiment"], config["model"]["family"] = experiment, family
    config["train"]["epochs"] = epochs
    if family == "cnn":
        config["model"].update(conv_filters=[8, 16], conv_dropout_rates=[0.1, 0.1])
    (folder / "config.json").write_text(json.dumps(config))
    history = {key: [0.5 + 0.1 * i for i in range(done)] for key in HISTORY_KEYS}
    metrics = {
        "finished": finished,
        "epochs_completed": done,
        "history": history,
        "device_kind": "gpu",
        "device_name": "NVIDIA H200",
    }
    if finished:
        metrics.update(test_accuracy=test_accuracy, test_loss=0.1)
    if done or finished:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if mtime is not None:
        os.utime(folder / "metrics.json", (mtime, mtime))
    return str(folder)


@pytest.fixture
def logdir(tmp_path):
    root = tmp_path / "runs"
    _run_dir(root / "old", mtime=1_000_000)
    _run_dir(
        root / "new-cnn",
        experiment="cnn",
        family="cnn",
        epochs=15,
        done=15,
        test_accuracy=0.9931,
        mtime=2_000_000,
    )
    _run_dir(root / "stopped", epochs=15, done=4, finished=False)
    _run_dir(root / "sweep" / "baseline-seed1", mtime=1_500_000)
    (root / "notes").mkdir()
    (root / "README.txt").write_text("not a folder")
    (root / "garbage").mkdir()
    (root / "garbage" / "config.json").write_text("{not json")
    bad = root / "bad-metrics"
    _run_dir(bad)
    (bad / "metrics.json").write_text('{"finished": true}')
    return root


def test_the_run_list_names_every_run_and_sums_up_the_rest_in_one_line(logdir):
    listing = run_list.find_runs(str(logdir))
    rows = {r["name"]: r for r in run_list.rows(listing.runs)}
    assert set(rows) == {"old", "new-cnn", "stopped", os.path.join("sweep", "baseline-seed1")}
    assert rows["new-cnn"]["model"] == "cnn" and rows["new-cnn"]["experiment"] == "cnn"
    assert rows["new-cnn"]["test_accuracy"] == 0.9931
    assert rows["stopped"]["status"] == "unfinished" and rows["stopped"]["finished"] is False
    assert (rows["stopped"]["epochs_done"], rows["stopped"]["epochs_planned"]) == (4, 15)
    assert rows["stopped"]["test_accuracy"] is None
    assert rows["old"]["device"] == "GPU (NVIDIA H200)"
    text = run_list.to_text(run_list.rows(listing.runs))
    assert "4/15" in text and "99.31 %" in text and "unfinished" in text
    skipped = listing.skipped_line()
    assert "\n" not in skipped
    assert "2 damaged" in skipped and "garbage" in skipped and "bad-metrics" in skipped
    assert "1 not runs (notes)" in skipped and "README" not in skipped


def test_latest_is_the_newest_finished_run(logdir, tmp_path):
    assert run_records.resolve_run_dir("latest", str(logdir)) == str(logdir / "new-cnn")
    assert run_records.resolve_run_dir("some/dir", str(logdir)) == "some/dir"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunDirError, match="no finished run under"):
        run_records.latest_finished(str(empty))
    with pytest.raises(RunDirError, match="no such folder"):
        run_records.latest_finished(str(tmp_path / "missing"))


def test_runs_command_lists_and_never_shows_a_traceback(logdir, tmp_path):
    result = run_main("mnist_research.runs", f"--logdir={logdir}")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["name", "experiment", "model", "dataset"]
    assert len(lines) == 1 + 4 + 1 and lines[-1].startswith("skipped: ")
    assert "Traceback" not in result.stderr
    as_json = json.loads(run_main("mnist_research.runs", f"--logdir={logdir}", "--json").stdout)
    assert len(as_json["runs"]) == 4 and len(as_json["damaged"]) == 2
    missing = run_main("mnist_research.runs", f"--logdir={tmp_path / 'nowhere'}")
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: ")
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # evaluates (a copy of) the finished run the session trains once
def test_evaluate_and_report_take_run_dir_latest(finished_run, tmp_path):
    logdir = tmp_path / "runs"
    run_dir = str(logdir / "smoke")
    shutil.copytree(finished_run[0], run_dir)  # evaluate writes into the run it finds
    result = run_main("mnist_research.evaluate", "--run_dir=latest", f"--logdir={logdir}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"--run_dir=latest: {run_dir}" in result.stderr
    assert os.path.exists(os.path.join(run_dir, "evaluation-test.json"))
    for command in ("evaluate", "predict", "report"):  # --help: a process of its own
        help_text = run_module(f"mnist_research.{command}", "--help").stdout
        assert "--run_dir=latest" in help_text and "--logdir" in help_text, command
    no_runs = tmp_path / "no-runs"
    no_runs.mkdir()
    nothing = run_main("mnist_research.report", "--run_dir=latest", f"--logdir={no_runs}")
    assert nothing.returncode == 1
    assert (
        nothing.stderr.strip()
        .splitlines()[-1]
        .startswith("error: --run_dir=latest: no finished run under")
    )


def test_a_run_being_trained_shows_as_running_with_its_pid(logdir):
    stopped = str(logdir / "stopped")
    with RunDirLock(stopped):
        rows = {r["name"]: r for r in run_list.rows(run_list.find_runs(str(logdir)).runs)}
        assert rows["stopped"]["status"] == f"running (PID {os.getpid()})"
        assert rows["stopped"]["running"].startswith(f"PID {os.getpid()} on ")
        assert rows["old"]["status"] == "finished" and rows["old"]["running"] is None
        assert f"running (PID {os.getpid()})" in run_list.to_text(list(rows.values()))
    # The lock goes with the process; the lock file stays and no longer means running.
    assert os.path.exists(os.path.join(stopped, ".lock"))
    assert run_list.row(run_records.read_run(stopped))["status"] == "unfinished"


def test_looking_at_the_lock_never_makes_a_starting_run_fail(tmp_path):
    # `runs` holds a shared lock for an instant; a run taking the lock then waits it out.
    with RunDirLock(str(tmp_path)):
        pass
    probe = os.open(str(tmp_path / ".lock"), os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH)
    threading.Timer(0.2, os.close, args=(probe,)).start()
    with RunDirLock(str(tmp_path)):
        assert records.holder(str(tmp_path)).startswith(f"PID {os.getpid()} on ")
    assert records.holder(str(tmp_path)) is None
    assert records.holder(str(tmp_path / "missing")) is None
