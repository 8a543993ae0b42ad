"""The benchmark command in smoke mode writes a complete, consistent JSON (no timing asserts)."""

import json

import pytest

from tests.helpers import run_module

pytestmark = pytest.mark.slow


def test_benchmark_smoke_writes_json(tmp_path):
    output = tmp_path / "benchmark.json"
    result = run_module("mnist_research.benchmark", "--smoke", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(output.read_text())
    for key in ("project_loop_seconds_per_epoch", "model_fit_seconds_per_epoch",
                "pipeline_seconds_per_epoch", "raw_tf_floor_seconds_per_epoch"):
        summary = results[key]
        assert summary["min"] <= summary["median"] <= summary["max"]
        assert all(s > 0 for s in summary["samples"])
    loop = results["project_loop_seconds_per_epoch"]["median"]
    fit = results["model_fit_seconds_per_epoch"]["median"]
    assert results["speedup_vs_model_fit"] == pytest.approx(fit / loop)
    floor = results["raw_tf_floor_seconds_per_epoch"]["median"]
    assert results["max_speedup_vs_model_fit_at_floor"] == pytest.approx(fit / floor)
    assert results["steps_per_epoch"] == 2048 // 128
    assert results["peak_rss_mb"] > 100 and results["startup_seconds_to_first_step"] > 0
    assert "speed-up vs model.fit" in result.stdout
