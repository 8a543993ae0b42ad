"""Issue 26 class 4: a sweep reuses a run only with the same settings; bad lists in one line."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist_research.analysis import sweep_runs
from mnist_research.config import ExperimentConfig
from mnist_research.errors import MnistResearchError
from tests.helpers import REPO, make_digits, run_main, signal_once_written, write_finished_run

SMOKE = os.path.join(REPO, "experiments", "smoke.flags")


def test_a_finished_run_with_other_settings_is_not_reused(tmp_path):
    config = sweep_runs._command_config(SMOKE, 1, None, [])
    run_dir = str(tmp_path / "smoke-seed1")
    write_finished_run(run_dir, config)
    assert sweep_runs.run_one(SMOKE, 1, run_dir, None, [])["test_accuracy"] == 0.5  # same
    with pytest.raises(MnistResearchError, match=r"hidden_units: \(256, 128, 64\) -> \(32, 16"):
        sweep_runs.run_one(
            SMOKE, 1, run_dir, None, ["--hidden_units=32,16,8", "--dropout_rates=0,0,0"]
        )
    assert isinstance(config, ExperimentConfig)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seeds=1,1,2"], "--seeds names 1 more than once"),
        (["--seeds="], "--seeds is empty"),
        (["--experiments="], "--experiments is empty"),
        (["--experiments=../experiments/smoke"], "is not a flagfile name"),
    ],
)
def test_bad_sweep_lists_are_one_line(tmp_path, flags, message):
    """In process: the line and the exit status are the command's own (its SIGTERM line and
    exit status, which need a process, are the test below)."""
    result = run_main("mnist_research.sweep", *flags, f"--output={tmp_path}/out")
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr and not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize(
    "extra",
    [
        ["--seed=5", "--epochs=1"],
        ["-seed", "5"],
        ["--run_dir=elsewhere"],
        ["--experiment=wide"],
        ["--logdir=elsewhere"],
        ["--resume"],
        ["--noresume"],
        ["--data_dir=elsewhere"],
        ["--flagfile={overlay}"],
    ],
)
def test_flags_the_sweep_sets_per_run_are_refused_after_the_double_dash(tmp_path, extra):
    overlay = tmp_path / "overlay.flags"
    overlay.write_text("--epochs=1\n--seed=5\n")
    extra = [a.format(overlay=overlay) for a in extra]
    result = run_main(
        "mnist_research.sweep",
        "--experiments=smoke",
        "--seeds=1,2",
        f"--output={tmp_path}/out",
        "--",
        *extra,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "after --: the sweep sets --" in result.stderr and "nothing was run" in result.stderr
    assert not os.path.exists(tmp_path / "out") and not os.path.exists("elsewhere")


@pytest.mark.slow
def test_sigterm_stops_the_sweep_and_its_training_child_resumably(tmp_path):
    """The sweep passes SIGTERM on, waits for its child, says so in one line and exits 143."""
    x, y = make_digits(1000, seed=3)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:100], y_test=y[:100])
    output = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "mnist_research.sweep",
        "--experiments=smoke",
        "--seeds=1",
        f"--data_dir={tmp_path}",
        f"--output={output}",
        "--",
        "--epochs=500",
        "--batch_size=32",
        "--steps_per_loop=1",
        "--nohistograms",
        "--nojit_compile",  # the plain step: no XLA compile before the first checkpoint
    ]
    sweep = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    stderr = signal_once_written(sweep, str(output / "**" / "ckpt-1.index"))
    assert sweep.returncode == 143, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("SIGTERM: sweep stopped")]
    assert len(lines) == 1 and "rerun the same sweep command to resume" in lines[0], stderr
    run_dir = os.path.dirname(
        os.path.dirname(glob.glob(str(output / "**" / "ckpt-1.index"), recursive=True)[0])
    )
    alive = subprocess.run(["pgrep", "-f", "--", f"--run_dir={run_dir}"], capture_output=True)
    assert alive.returncode == 1, "the training child outlived the sweep"


@pytest.mark.parametrize(
    "command, name",
    [
        ("mnist_research.sweep", "results.md"),
        ("mnist_research.sweep", "results.csv"),
        ("mnist_research.sweep", "sweep.png"),
        ("mnist_research.compare", "compare.md"),
        ("mnist_research.compare", "compare.json"),
        ("mnist_research.compare", "compare.png"),
        ("mnist_research.benchmark", "mine.json"),
    ],
)
def test_a_table_or_figure_never_replaces_a_users_file(tmp_path, command, name):
    """Issue 35 class 2: an output path holding a file the command did not write is refused."""
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text("the user's own notes\n")
    before = sorted(p.name for p in out.iterdir())
    args = {
        "mnist_research.sweep": ["--experiments=smoke", "--seeds=1", f"--output={out}"],
        "mnist_research.compare": [f"--output={out}", str(tmp_path / "a"), str(tmp_path / "b")],
        "mnist_research.benchmark": ["--smoke", f"--output={out / name}"],
    }[command]
    if command == "mnist_research.compare":
        for run in ("a", "b"):
            write_finished_run(str(tmp_path / run), sweep_runs._command_config(SMOKE, 1, None, []))
    result = run_main(command, *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{out / name}: not replaced: it exists and was not written by this project" in (
        result.stderr
    )
    assert (out / name).read_text() == "the user's own notes\n"
    assert sorted(p.name for p in out.iterdir()) == before
