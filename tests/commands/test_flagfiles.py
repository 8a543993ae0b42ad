"""Issue 26 class 7: nested flagfiles resolve from the including file, --help exits 0."""

import os

import pytest
from absl import flags

from mnist_research import flagfiles
from tests.helpers import REPO, run_module


def test_nested_flagfiles_work_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expanded = flagfiles.expand(
        ["prog", f"--flagfile={REPO}/experiments/cnn.flags", "--seed=3", "--", "--flagfile=x"]
    )
    assert "--hidden_units=256,128,64" in expanded  # from the nested baseline.flags
    assert expanded.index("--experiment=baseline") < expanded.index("--experiment=cnn")
    assert expanded[-3:] == ["--seed=3", "--", "--flagfile=x"]


def test_a_nested_flagfile_next_to_its_includer_and_a_cycle(tmp_path):
    (tmp_path / "a.flags").write_text("# comment\n--flagfile=b.flags\n--seed=1\n")
    (tmp_path / "b.flags").write_text("--epochs=2\n")
    assert flagfiles.expand(["p", f"--flagfile={tmp_path}/a.flags"]) == [
        "p",
        "--epochs=2",
        "--seed=1",
    ]
    (tmp_path / "b.flags").write_text("--flagfile=a.flags\n")
    with pytest.raises(flags.Error, match="includes itself"):
        flagfiles.expand(["p", f"--flagfile={tmp_path}/a.flags"])


def test_help_exits_zero():
    result = run_module("mnist_research.evaluate", "--help", timeout=120, cwd=os.sep)
    assert result.returncode == 0 and "--run_dir" in result.stdout + result.stderr
