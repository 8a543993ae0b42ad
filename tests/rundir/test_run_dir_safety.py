"""Run-dir safety: --overwrite only deletes a run dir, one process per run dir, glob-safe
paths, ordinary permissions (issue 14). Damaged files: tests/training/test_damaged_files.py.
"""

import os
import re
import signal
import stat
import subprocess
import sys

import pytest
import tensorflow as tf

from mnist_research import files
from mnist_research.config import ModelConfig
from mnist_research.errors import RunDirError
from mnist_research.rundir import existing, layout
from mnist_research.rundir.lock import RunDirLock

# --------------------------------------------------------------------------- --overwrite


def _make_run_dir(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in (
        "config.json",
        "flags.txt",
        "metrics.json",
        "model.keras",
        "events.out.tfevents.1.host.2.v2",
        "evaluation-test.json",
        "export.tflite",
        "export_int8.tflite",
        "export.onnx",
        "evaluation-test-export.onnx.json",
    ):
        (folder / name).write_text("x")
    for relative in (
        "checkpoints/checkpoint",
        "checkpoints/ckpt-2.index",
        "checkpoints/best/ckpt-1.data-00000-of-00001",
        "train/events.out.tfevents.1.host.3.v2",
        "validation/events.out.tfevents.1.h.v2",
        "export/saved_model.pb",
        "export/variables/variables.index",
        "reports/curves.png",
        "reports/report.html",
        "train/plugins/profile/2026_11_25_17_00_00/host.xplane.pb",
    ):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text("x")
    (folder / "export" / "assets").mkdir()
    return folder


NOT_RUN_DIRS = {
    "a thesis folder": (
        {"notes.txt": "my notes", "thesis/chapter1.tex": "text"},
        "notes.txt, thesis",
    ),
    "a run dir with the user's notes": ({"config.json": "{}", "NOTES.md": "keep me"}, "NOTES.md"),
    "only unrelated hidden files": ({".bashrc": "x"}, ".bashrc"),
    "a source tree": ({"setup.cfg": "x", "mnist_research/__init__.py": ""}, "mnist_research"),
    "run files but no marker": (
        {"metrics.json": "{}", "reports/a.png": "x"},
        "does not look like a run directory",
    ),
    "user files inside folders named like a run's": (
        {
            "config.json": "{}",
            "checkpoints/resnet50_epoch90.pt": "weights",
            "train/cat001.jpg": "x",
            "reports/thesis.docx": "x",
            "export/data/table.csv": "x",
        },
        "checkpoints/resnet50_epoch90.pt, export/data, reports/thesis.docx, train/cat001.jpg",
    ),
    "an empty folder of the user's inside a run's": (
        {"config.json": "{}", "checkpoints/ckpt-1.index": "x", "checkpoints/mine/.keep": ""},
        "checkpoints/mine",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_RUN_DIRS))
def test_overwrite_refuses_anything_but_a_run_dir(case, tmp_path):
    contents, named = NOT_RUN_DIRS[case]
    folder = tmp_path / "target"
    for relative, text in contents.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    before = sorted(str(p) for p in folder.rglob("*"))
    with pytest.raises(RunDirError) as error:
        existing.check_overwritable(str(folder))
    assert "--overwrite refused" in str(error.value) and named in str(error.value)
    assert sorted(str(p) for p in folder.rglob("*")) == before


def test_overwrite_refuses_the_working_directory_and_a_file(tmp_path, monkeypatch):
    from tests.helpers import REPO

    with pytest.raises(RunDirError, match="--overwrite refused"):
        existing.check_overwritable(REPO)
    monkeypatch.chdir(REPO)
    with pytest.raises(RunDirError, match="--overwrite refused"):
        existing.check_overwritable(".")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="not a directory"):
        existing.check_overwritable(str(tmp_path / "file"))


def test_overwrite_clears_a_run_dir_but_not_what_its_links_point_to(tmp_path):
    run = _make_run_dir(tmp_path / "run")
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.txt").write_text("keep")
    (run / ".lock").write_text("PID 1")
    existing.check_overwritable(str(run))  # a run dir: accepted
    (run / "reports" / "link").symlink_to(outside)
    with pytest.raises(RunDirError, match="it holds reports/link"):  # a run writes no links
        existing.check_overwritable(str(run))
    existing.check_overwritable(str(tmp_path / "missing"))  # nothing to delete
    empty = tmp_path / "empty"
    empty.mkdir()
    existing.check_overwritable(str(empty))
    existing.clear(str(run))
    assert sorted(os.listdir(run)) == [".lock"]
    assert (outside / "data.txt").read_text() == "keep"


# --------------------------------------------------------------------------- the lock

_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"PID {os.getpid()} on testhost".encode())
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    with RunDirLock(str(tmp_path)):
        with pytest.raises(
            RunDirError, match=f"in use by another training process \\(PID {os.getpid()} on "
        ):
            with RunDirLock(str(tmp_path)):
                pass
    with RunDirLock(str(tmp_path)):  # released at the end of the block
        pass


def test_the_lock_of_a_killed_process_is_released(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=f"PID {holder.pid} on testhost"):
            with RunDirLock(str(tmp_path)):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    with RunDirLock(str(tmp_path)):  # SIGKILL released it: no stale lock
        pass


# --------------------------------------------------------------------------- globs


@pytest.mark.parametrize(
    "name, shown", [("exp[1]", "[ ]"), ("exp*", "*"), ("exp?", "?"), ("a\\b", "\\")]
)
def test_run_dir_with_glob_characters_is_refused(tmp_path, name, shown):
    with pytest.raises(RunDirError, match=f"cannot contain {re.escape(shown)} "):
        layout.check_path(str(tmp_path / name))
    layout.check_path(str(tmp_path / "exp-1 (copy) {x}"))


def test_tensorflow_deletes_a_siblings_checkpoint_under_a_glob_run_dir(tmp_path):
    """Why check_path refuses '*': TensorFlow's CheckpointManager globs when it deletes."""
    checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
    for name in ("exp*", "exp2"):
        manager = tf.train.CheckpointManager(checkpoint, str(tmp_path / name), max_to_keep=1)
        manager.save(1)
    tf.train.CheckpointManager(checkpoint, str(tmp_path / "exp*"), max_to_keep=1).save(2)
    assert not (tmp_path / "exp2" / "ckpt-1.index").exists()


def test_stale_temporaries_are_removed_only_inside_the_run_dir(tmp_path):
    run, sibling = tmp_path / "exp*", tmp_path / "exp2"
    for folder in (run, sibling):
        (folder / "train").mkdir(parents=True)
        (folder / ".tmp-abc-metrics.json").write_text("x")
        (folder / "train" / "events.pruning").write_text("x")
    removed = existing.remove_stale_temporaries(str(run))
    assert len(removed) == 2 and all(p.startswith(str(run)) for p in removed)
    assert (sibling / ".tmp-abc-metrics.json").exists()


# --------------------------------------------------------------------------- permissions


def test_written_files_and_export_dirs_have_ordinary_permissions(tmp_path):
    from mnist_research.inference import export as export_lib
    from mnist_research.model import registry

    previous = os.umask(0o022)
    try:
        files.write_json(str(tmp_path / "metrics.json"), {"a": 1})
        model = registry.create(ModelConfig(hidden_units=(8,), dropout_rates=(0.0,)))
        export_lib.export_saved_model(model, str(tmp_path / "export"))
    finally:
        os.umask(previous)
    modes = {}
    for root, dirs, names in os.walk(tmp_path):
        for name in dirs + names:
            path = os.path.join(root, name)
            modes[os.path.relpath(path, tmp_path)] = stat.S_IMODE(os.stat(path).st_mode)
    assert modes["metrics.json"] == 0o644 and modes["export"] == 0o755
    assert all(mode in (0o644, 0o755) for mode in modes.values()), modes
