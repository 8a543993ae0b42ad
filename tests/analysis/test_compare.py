"""`compare`: the side-by-side table (markdown, JSON) and figure of finished runs."""

import json
from pathlib import Path

import pytest

from mnist_research.analysis import compare_table as compare_lib
from mnist_research.analysis import figures
from mnist_research.config import ExperimentConfig
from tests.helpers import SMOKE, run_main, run_module


def _steady(metrics):
    """Mean s/epoch and examples/s of epochs 2..N, computed here from the history."""
    seconds = metrics["history"]["epoch_seconds"][1:]
    examples = [s * e for s, e in zip(seconds, metrics["history"]["examples_per_second"][1:])]
    return sum(seconds) / len(seconds), sum(examples) / sum(seconds)


def _table_lines(markdown):
    return [line for line in markdown.splitlines() if line.startswith("| ")]


@pytest.mark.slow  # reads the finished 1-replica and 2-replica runs the session trains once
def test_compare_two_runs_table_json_and_png(finished_run, mirrored_run, tmp_path):
    first, _ = finished_run
    second, _ = mirrored_run
    output = tmp_path / "cmp"
    # One real process: the table a user sees on the terminal.
    result = run_module("mnist_research.compare", first, second, f"--output={output}")
    assert result.returncode == 0, result.stderr[-2000:]

    metrics = [json.loads((Path(d) / "metrics.json").read_text()) for d in (first, second)]
    steady = [_steady(m) for m in metrics]
    markdown = (output / "compare.md").read_text()
    header, *lines = _table_lines(markdown)
    assert len(lines) == 2
    assert "| strategy |" in header and "| replicas |" in header and "| s/epoch |" in header
    for line, m, (seconds, _) in zip(lines, metrics, steady):
        assert f"{100 * m['test_accuracy']:.2f} %" in line
        assert f"| {m['num_replicas']} |" in line and f"| {seconds:.3f} |" in line
    assert "| 1.00× |" in lines[0] and "(reference)" in lines[0]
    assert f"| {steady[1][1] / steady[0][1]:.2f}× |" in lines[1]
    delta = 100 * (metrics[1]["test_accuracy"] - metrics[0]["test_accuracy"])
    assert f"| {delta:+.2f} pp |" in lines[1]
    assert "MirroredStrategy" in lines[1] and markdown in result.stdout

    result = run_main("mnist_research.compare", first, second, f"--output={output}", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    assert printed == json.loads((output / "compare.json").read_text())
    assert [r["replicas"] for r in printed["runs"]] == [1, 2]
    assert printed["runs"][1]["examples_per_second"] == pytest.approx(steady[1][1])
    from matplotlib import image

    height, width = image.imread(str(output / "compare.png")).shape[:2]
    assert width > 1000 and width / height == pytest.approx(18 / 5, rel=0.25)


@pytest.mark.slow  # trains a CNN (in this process)
def test_compare_of_an_mlp_and_a_cnn_names_both_families_and_the_differing_settings(
    finished_run, npz_dir, tmp_path
):
    mlp, _ = finished_run
    cnn = str(tmp_path / "cnn-run")
    result = run_main(
        "mnist_research.train",
        SMOKE,
        f"--data_dir={npz_dir}",
        f"--run_dir={cnn}",
        "--histograms=false",
        "--experiment=smoke_cnn",
        "--model=cnn",
        "--conv_filters=8,16",
        "--conv_dropout_rates=0.1,0.1",
        "--hidden_units=32",
        "--dropout_rates=0.2",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = tmp_path / "cmp"
    result = run_main("mnist_research.compare", mlp, cnn, f"--output={output}")
    assert result.returncode == 0, result.stderr[-2000:]
    header, mlp_line, cnn_line = _table_lines((output / "compare.md").read_text())
    columns = [c.strip() for c in header.strip("|").split("|")]
    mlp_cells = [c.strip() for c in mlp_line.strip("|").split("|")]
    cnn_cells = [c.strip() for c in cnn_line.strip("|").split("|")]
    row = {name: (a, b) for name, a, b in zip(columns, mlp_cells, cnn_cells)}
    assert row["model"] == ("mlp", "cnn")
    assert row["experiment"] == ("smoke", "smoke_cnn")
    assert row["conv_filters"] == ("-", "8,16")
    assert row["hidden_units"] == ("256,128,64", "32")
    assert row["dropout_rates"] == ("0.3,0.3,0.2", "0.2")
    assert "batch_size" not in row and "data_dir" not in row, "only settings that differ"
    assert row["device"][0] == row["device"][1] and row["device"][0].startswith("CPU")
    assert row["precision"] == ("float32", "float32")


def _fake_run(folder, seconds, throughput, accuracy, val_accuracy=None, **config_changes):
    folder.mkdir()
    config = ExperimentConfig().to_dict()
    for key, value in config_changes.items():
        section, name = key.split("__")
        config[section][name] = value
    val_accuracy = val_accuracy or [0.5] * len(seconds)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "finished": True,
                "epochs_completed": len(seconds),
                "test_accuracy": accuracy,
                "test_loss": 0.1,
                "num_replicas": 1,
                "strategy": "X",
                "device_name": "D",
                "device_kind": "cpu",
                "history": {
                    "epoch_seconds": seconds,
                    "examples_per_second": throughput,
                    "val_accuracy": val_accuracy,
                    "val_loss": [1.0 - v for v in val_accuracy],
                    "accuracy": [0.5] * len(seconds),
                    "loss": [1.0] * len(seconds),
                },
            }
        )
    )
    return compare_lib.load_run(str(folder))


def test_compare_rows_time_the_steady_state(tmp_path):
    # b's epochs hold half as many examples: shorter epochs, but twice the throughput.
    rows = compare_lib.rows(
        [
            _fake_run(tmp_path / "a", [9.0, 2.0, 2.2], [100.0, 500.0, 550.0], 0.9),
            _fake_run(tmp_path / "b", [5.0, 0.5, 0.6], [200.0, 1000.0, 1100.0], 0.8),
            _fake_run(tmp_path / "c", [3.0], [300.0], 0.95),
        ]
    )
    assert rows[0]["epoch_seconds"] == pytest.approx(2.1), "epoch 1 (compilation) is left out"
    assert rows[0]["examples_per_second"] == pytest.approx((2.0 * 500 + 2.2 * 550) / 4.2)
    assert rows[1]["examples_per_second"] == pytest.approx((0.5 * 1000 + 0.6 * 1100) / 1.1)
    assert rows[0]["speedup"] == 1.0
    assert rows[1]["speedup"] == pytest.approx(
        rows[1]["examples_per_second"] / rows[0]["examples_per_second"]
    )
    assert rows[1]["accuracy_delta"] == pytest.approx(-10.0)
    assert rows[2]["epoch1_only"] and rows[2]["examples_per_second"] == 300.0
    markdown = compare_lib.to_markdown(rows).splitlines()
    assert f"| {rows[1]['speedup']:.2f}× |" in markdown[3] and "| -10.00 pp |" in markdown[3]
    assert "300 †" in markdown[4]
    assert any(line.startswith("- b (CPU (D), float32) vs a") for line in markdown)


def test_differing_settings_leave_out_paths_and_devices_and_name_clashes_fully():
    base = ExperimentConfig().to_dict()
    other = json.loads(json.dumps(base))
    other["data"]["data_dir"] = "/elsewhere"
    other["distribute"]["mixed_precision"] = "mixed_float16"
    other["train"]["seed"] = 7
    other["model"]["dropout_rates"] = [0.1]
    assert compare_lib.differing_settings([base, other]) == {
        "model.dropout_rates": "dropout_rates",
        "train.seed": "seed",
    }
    other["model"]["family"] = "cnn"
    assert "model.family" not in compare_lib.differing_settings([base, other])
    longer = json.loads(json.dumps(base))
    longer["train"]["epochs"] = 30
    assert "train.epochs" not in compare_lib.differing_settings([base, longer])  # own column
    clash = json.loads(json.dumps(base))
    clash["train"]["seed"], clash["data"]["seed"] = 3, 1  # two sections, one name
    base["data"]["seed"] = 2
    labels = compare_lib.differing_settings([base, clash])
    assert labels == {"data.seed": "data.seed", "train.seed": "train.seed"}


def test_compare_figure_zooms_on_where_the_runs_differ(tmp_path, monkeypatch):
    kept = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, dpi=100: kept.append(fig))
    curve_a = [0.90, 0.95, 0.970, 0.975, 0.978, 0.980]
    curve_b = [0.91, 0.96, 0.972, 0.979, 0.983, 0.982]
    runs = [
        _fake_run(tmp_path / "a", [2.0] * 6, [100.0] * 6, 0.98, curve_a),
        _fake_run(tmp_path / "b", [1.0] * 6, [200.0] * 6, 0.98, curve_b),
    ]
    compare_lib.plot(runs, compare_lib.rows(runs), "compare.png")
    ax_acc, ax_loss, ax_speed = kept[0].axes
    low, high = ax_acc.get_ylim()
    assert low <= 0.975 and high >= 0.983 and high - low < 0.03, "not zoomed like curves.png"
    assert ax_acc.get_xlim()[0] >= 3, "the first half of the epochs is left out"
    assert "epochs 4–6" in ax_acc.get_title()
    assert ax_loss.get_ylim()[1] - ax_loss.get_ylim()[0] < 0.03
    assert sorted(bar.get_width() for bar in ax_speed.patches) == [100.0, 200.0]
    figures.plt.close(kept[0])


def test_compare_refuses_unfinished_run(tmp_path):
    result = run_main("mnist_research.compare", str(tmp_path), f"--output={tmp_path / 'o'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "o").exists(), "nothing half-written"
