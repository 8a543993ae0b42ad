"""benchmarks/gpu_check.sh: every step but the GPU itself, on the CPU (--cpu_only --tiny)."""

import json

import pytest

from tests.helpers import finish, start_gpu_check


def _run(*args, cwd, env=None, timeout=900):
    return finish(start_gpu_check(*args, cwd=cwd, env=env), timeout)


@pytest.mark.slow
def test_gpu_check_cpu_only_tiny_writes_the_compare_table(gpu_check_scripts):
    folder, process = gpu_check_scripts["tiny"]
    output = folder / "check"
    result = finish(process, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    markdown = (output / "compare" / "compare.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1].strip() for row in rows] == ["cpu", "gpu-fp32", "gpu-mixed"]
    table = json.loads((output / "compare" / "compare.json").read_text())
    assert [r["run"] for r in table["runs"]] == ["cpu", "gpu-fp32", "gpu-mixed"]
    assert [r["precision"] for r in table["runs"]] == ["float32", "float32", "mixed_float16"]
    assert all(r["device_kind"] == "cpu" and r["epochs"] == 2 for r in table["runs"])
    assert (output / "compare" / "compare.png").stat().st_size > 10_000
    assert markdown in result.stdout
    for name in ("cpu", "gpu-fp32", "gpu-mixed"):
        assert json.loads((output / name / "metrics.json").read_text())["finished"]


@pytest.mark.slow
def test_gpu_check_without_a_gpu_fails_in_one_line_and_writes_nothing(gpu_check_scripts):
    tmp_path, process = gpu_check_scripts["no_gpu"]
    result = finish(process, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: TensorFlow sees no GPU")
    assert not (tmp_path / "out").exists()


def test_gpu_check_refuses_bad_arguments_before_anything_runs(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    for args, message in (
        ((f"--output={tmp_path / 'full'}",), "exists and is not empty"),
        (("--epochs=0",), "--epochs=0"),
        (("--bogus",), "unknown argument"),
        ((f"--data_dir={tmp_path / 'nowhere'}",), "no such folder"),
    ):
        result = _run(*args, cwd=tmp_path, timeout=60)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: ") and message in result.stderr, args
