"""The benchmark: its smoke run writes a complete, consistent JSON; its parts' arithmetic.

No timing is asserted: timings depend on the machine and its load.
"""

import json
import subprocess
import sys

import pytest

from mnist_research.benchmarks import peers, phases, report, suite
from tests.helpers import REPO, run_main


@pytest.mark.slow
def test_benchmark_smoke_writes_every_figure(tmp_path):
    # In this process (its output is a JSON and tables, no terminal output of TensorFlow's):
    # the steady part trains here; peers and whole start their own processes as always.
    output = tmp_path / "benchmark.json"
    result = run_main("mnist_research.benchmark", "--smoke", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(output.read_text())
    steady = results["steady"]
    project = [suite.steady_seconds(s) for s in steady["project"]["epoch_seconds"]]
    for runner in (
        "project",
        "project_plain",
        "identical_fit",
        "identical_fit_xla",
        "notebook_fit",
    ):
        seconds = steady[runner]["steady_seconds"]
        assert 0 < seconds["min"] <= seconds["median"] <= seconds["max"]
        assert all(len(s) == 2 for s in steady[runner]["epoch_seconds"])  # 2 smoke epochs
    ratios = [
        suite.steady_seconds(s) / p
        for s, p in zip(steady["notebook_fit"]["epoch_seconds"], project)
    ]
    assert steady["speedup"]["notebook_fit"]["samples"] == pytest.approx(ratios)
    for floor in ("pipeline_seconds", "raw_tf_seconds", "raw_tf_xla_seconds"):
        assert results["floors"][floor]["min"] > 0
    assert results["peers"]["project"]["total_seconds"]["median"] > 0
    for other in ("torch", "jax"):  # Optional: timed where importable, else skipped.
        assert "skipped" in results["peers"][other] or results["peers"][other]["runs"]
    whole = results["whole"]
    assert whole["train_vs_notebook"]["median"] == pytest.approx(
        whole["train"]["whole_seconds"]["median"]
        / whole["notebook_script"]["whole_seconds"]["median"]
    )
    (timed,) = whole["phases"]
    assert set(timed["phases"]) == set(phases.PHASES) and timed["epochs_trained"] == 2
    assert sum(timed["phases"].values()) == pytest.approx(timed["whole_seconds"])
    assert timed["whole_seconds"] <= timed["whole_seconds_outside"] + 1.0
    assert set(results["targets"]) >= {
        "steady speed-up vs the notebook's model.fit",
        "whole command / notebook script",
    }
    assert "Targets:" in result.stdout and "| notebook script |" in result.stdout


def test_phases_add_up_to_the_whole_command(monkeypatch):
    timer = phases.PhaseTimer()
    clock = iter([10.0, 11.0, 12.0, 20.0, 20.5, 21.0])
    monkeypatch.setattr(phases.time, "time", lambda: next(clock))
    for name in ("setup", "first_epoch", "validation", "test_evaluation"):
        timer.mark(name)
    export = timer.timed("export", lambda: "written", then="exit")
    assert export() == "written"  # marks export at 20.5, then the exit at 21.0
    result = phases.report(timer, t0=9.0, exit_time=30.0)
    assert result["phases"]["startup"] == 1.0  # t0 to the first phase
    assert result["phases"]["first_epoch"] == 1.0 and result["phases"]["validation"] == 8.0
    assert result["phases"]["export"] == 0.5 and result["phases"]["exit"] == 9.0
    assert sum(result["phases"].values()) == pytest.approx(21.0)
    assert result["whole_seconds"] == 21.0


def test_missing_framework_is_skipped_with_a_line(tmp_path, monkeypatch):
    monkeypatch.setitem(peers.REQUIREMENTS, "torch", ("no_such_module_xyz",))
    assert peers.missing("torch") == ["no_such_module_xyz"]
    output = tmp_path / "torch.json"
    command = (
        "import sys; from mnist_research.benchmarks import peers; "
        "peers.REQUIREMENTS['torch'] = ('no_such_module_xyz',); "
        f"sys.exit(peers.main(['peers', 'torch', 'unused', '1', {str(output)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(output.read_text()) == {"skipped": "no_such_module_xyz not importable"}


def test_targets_compare_each_figure_with_its_threshold():
    results = {
        "steady": {"speedup": {"notebook_fit": {"median": 3.2}}},
        "peers": {
            "project": {"total_seconds": {"median": 9.0}},
            "torch": {"total_seconds": {"median": 18.0}},
            "jax": {"skipped": "x"},
        },
        "whole": {
            "train_vs_notebook": {"median": 0.5},
            "phases": [{"outside_epochs_fraction": f} for f in (0.3, 0.5, 0.35)],
            "train": {"test_accuracy": {"median": 0.9815}},
        },
    }
    found = report.targets(results)
    assert found["steady speed-up vs the notebook's model.fit"]["met"]
    assert found["15 epochs: project / torch"] == {"value": 0.5, "target": 1.0, "met": True}
    assert "15 epochs: project / jax" not in found
    assert not found["whole command / notebook script"]["met"]
    assert found["time outside epochs / command"]["value"] == 0.35
    assert found["test accuracy (seed 42)"]["met"]
