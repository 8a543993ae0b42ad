"""`compare`: the side-by-side table and figure of finished runs."""

import json
import os

import numpy as np
import pytest

from mnist_research.analysis import compare_table as compare_lib
from tests.helpers import run_module

pytestmark = pytest.mark.slow


def test_compare_two_runs_table_and_png(finished_run, npz_dir, tmp_path):
    first, _ = finished_run
    second = str(tmp_path / "second-2cpu")
    result = run_module("mnist_research.train", "--flagfile=experiments/smoke.flags",
                        f"--data_dir={npz_dir}", f"--run_dir={second}", "--strategy=mirrored",
                        "--num_cpu_devices=2", "--histograms=false")
    assert result.returncode == 0, result.stderr[-2000:]
    output = tmp_path / "cmp"
    result = run_module("mnist_research.compare", first, second, f"--output={output}")
    assert result.returncode == 0, result.stderr[-2000:]

    metrics = [json.load(open(os.path.join(d, "metrics.json"))) for d in (first, second)]
    seconds = [float(np.median(m["history"]["epoch_seconds"])) for m in metrics]
    speed = [float(np.median(m["history"]["examples_per_second"])) for m in metrics]
    markdown = (output / "compare.md").read_text()
    lines = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert len(lines) == 2
    for line, m, s in zip(lines, metrics, seconds):
        assert f"{100 * m['test_accuracy']:.2f} %" in line and f"{m['test_loss']:.4f}" in line
        assert f"| {m['num_replicas']} |" in line and f"{s:.3f}" in line
    assert "| 1.00× |" in lines[0]
    assert f"| {speed[1] / speed[0]:.2f}× |" in lines[1]
    assert "MirroredStrategy" in lines[1] and markdown in result.stdout
    from matplotlib import image
    height, width = image.imread(str(output / "compare.png")).shape[:2]
    assert width > 1000 and width / height == pytest.approx(18 / 5, rel=0.25)


def test_compare_rows_by_hand(tmp_path):
    def fake(name, seconds, throughput, accuracy):
        folder = tmp_path / name
        folder.mkdir()
        from mnist_research.config import ExperimentConfig
        (folder / "config.json").write_text(json.dumps(ExperimentConfig().to_dict()))
        (folder / "metrics.json").write_text(json.dumps({
            "finished": True, "epochs_completed": 3, "test_accuracy": accuracy,
            "test_loss": 0.1, "num_replicas": 1, "strategy": "X", "device_name": "D",
            "device_kind": "cpu", "history": {"epoch_seconds": seconds,
                                              "loss": [1.0] * 3, "accuracy": [0.5] * 3,
                                              "examples_per_second": throughput,
                                              "val_accuracy": [0.5] * 3,
                                              "val_loss": [1.0] * 3,
                                              "accuracy": [0.5] * 3, "loss": [1.0] * 3}}))
        return compare_lib.load_run(str(folder))

    # b's epochs hold half as many examples: 3.7x shorter epochs, but 2x the throughput.
    rows = compare_lib.rows([fake("a", [9.0, 2.0, 2.2], [100.0, 500.0, 550.0], 0.9),
                             fake("b", [5.0, 0.5, 0.6], [200.0, 1000.0, 1100.0], 0.8)])
    assert rows[0]["epoch_seconds"] == 2.2 and rows[1]["epoch_seconds"] == 0.6
    assert rows[0]["speedup"] == 1.0
    assert rows[1]["speedup"] == pytest.approx(1000.0 / 500.0)
    assert "| 2.00× |" in compare_lib.to_markdown(rows).splitlines()[3]


def test_compare_refuses_unfinished_run(tmp_path):
    result = run_module("mnist_research.compare", str(tmp_path), f"--output={tmp_path / 'o'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
