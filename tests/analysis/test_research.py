"""Research workflow: bit-identical reruns with --deterministic, and the sweep over seeds."""

import csv
import json
import os

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from mnist_research.analysis import sweep_table as sweep_lib
from tests.helpers import finish, run_main, run_module, selected, side_by_side, start_module, stop

TIMING_KEYS = ("epoch_seconds", "examples_per_second")


def _start(npz_dir, run_dir, *extra):
    """Starts a smoke training run; :func:`_finish` waits for it and reads what it saved."""
    args = (
        "--flagfile=experiments/smoke.flags",
        f"--data_dir={npz_dir}",
        f"--run_dir={run_dir}",
        "--histograms=false",
        *extra,
    )
    return run_dir, start_module("mnist_research.train", *args)


def _saved(run_dir):
    """A finished run's metrics.json and every tensor of its last checkpoint."""
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints"))
    # Every saved tensor (weights, BN statistics, Adam moments, RNG states, counters)
    # but the history, which holds the epoch timings.
    weights = {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if not name.startswith(("history/", "_CHECKPOINTABLE"))
    }
    return metrics, weights


def _finish(started):
    run_dir, process = started
    try:
        result = finish(process, timeout=900)  # CNN runs under --deterministic are slow
    finally:
        stop(process)  # what a failed step left running
    assert result.returncode == 0, result.stderr[-2000:]
    return _saved(run_dir)


def _train(npz_dir, run_dir, *extra):
    """A step of :func:`side_by_side`: a training run, then what it saved."""
    return lambda: _finish(_start(npz_dir, run_dir, *extra))


def _sweep_args(npz_dir, output):
    """The seed sweep of the smoke experiment over seeds 3 and 4, --deterministic."""
    return (
        "--experiments=smoke",
        "--seeds=3,4",
        f"--data_dir={npz_dir}",
        f"--output={output}",
        "--",
        "--histograms=false",
        "--deterministic",
    )


SMALL_CNN = (
    "--model=cnn",
    "--conv_filters=8,16",
    "--conv_dropout_rates=0.1,0.1",
    "--hidden_units=32",
    "--dropout_rates=0.2",
)
# The CNN test's runs: augmented, so its resume also restores the augmentation's batches.
CNN = (*SMALL_CNN, "--augment", "--deterministic", "--seed=5")


@pytest.fixture(scope="module")
def runs(npz_dir, tmp_path_factory, request):
    """The module's --deterministic runs (only read), those of the selected tests, side by
    side; in each chain one after another:

    - ``sweep``: a sweep over seeds 3 and 4 (``sweep/smoke-seed{3,4}``): the sweep test's
      runs, and runs a (seed 3) and c (seed 4) of the same-seed test;
    - ``b``: seed 3 again, a run of its own (``train`` started directly, not by the sweep);
    - ``resumed``: seed 3 stopped after epoch 1 (``--epochs=1``), then resumed to epoch 2
      by a second process: the MLP resume test's run;
    - ``cnn_straight``, ``cnn_resumed``: the augmented CNN for 2 epochs, and the same
      stopped after epoch 1 and resumed to 2 by a second process.
    """
    folder = tmp_path_factory.mktemp("research")
    sweep = folder / "sweep"
    chains = {}
    if selected(request, "mlp_runs"):
        chains["sweep"] = [
            lambda: finish(
                start_module("mnist_research.sweep", *_sweep_args(npz_dir, sweep)), timeout=900
            )
        ]
        chains["b"] = [_train(npz_dir, folder / "b", "--deterministic", "--seed=3")]
        seed3 = (npz_dir, folder / "resumed", "--deterministic", "--seed=3")
        chains["resumed"] = [_train(*seed3, "--epochs=1"), _train(*seed3)]
    if selected(request, "cnn_runs"):
        chains["cnn_straight"] = [_train(npz_dir, folder / "straight", *CNN, "--epochs=2")]
        cnn = (npz_dir, folder / "cnn_resumed", *CNN)
        chains["cnn_resumed"] = [_train(*cnn, "--epochs=1"), _train(*cnn, "--epochs=2")]
    results = side_by_side(chains)
    if "sweep" in results:
        (result,) = results["sweep"]
        assert result.returncode == 0, result.stderr[-3000:]
        results["sweep_dir"] = sweep
    results["folder"] = folder
    return results


@pytest.fixture(scope="module")
def mlp_runs(runs):
    """The MLP tests' runs (see ``runs``)."""
    return {
        "sweep": runs["sweep"][0],
        "sweep_dir": runs["sweep_dir"],
        "a": _saved(runs["sweep_dir"] / "smoke-seed3"),
        "b": runs["b"][0],
        "c": _saved(runs["sweep_dir"] / "smoke-seed4"),
        "stopped": runs["resumed"][0],
        "resumed": runs["resumed"][1],
    }


@pytest.fixture(scope="module")
def cnn_runs(runs):
    """The CNN test's runs (see ``runs``) and their folder."""
    return runs["cnn_straight"][0], *runs["cnn_resumed"], runs["folder"]


@pytest.mark.slow
def test_deterministic_same_seed_is_bit_identical_and_seeds_differ(mlp_runs):
    (a, weights_a), (b, weights_b), (c, weights_c) = (mlp_runs[k] for k in "abc")
    for key, values in a["history"].items():
        if key not in TIMING_KEYS:
            assert values == b["history"][key], key  # exact float equality
    assert (a["test_accuracy"], a["test_loss"]) == (b["test_accuracy"], b["test_loss"])
    assert a["weights_sha256"] == b["weights_sha256"]
    assert len(weights_a) >= 40 and weights_a.keys() == weights_b.keys()
    for name in weights_a:
        np.testing.assert_array_equal(weights_a[name], weights_b[name], err_msg=name)
    assert c["history"]["loss"] != a["history"]["loss"]
    assert c["weights_sha256"] != a["weights_sha256"]
    assert any(not np.array_equal(weights_a[n], weights_c[n]) for n in weights_a)


@pytest.mark.slow
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(mlp_runs):
    """Stopped after epoch 1 and resumed, a run ends where one that never stopped ends.

    With the XLA step on (the default): the dropout masks are a function of (seed,
    step), so nothing random is lost with the process; the checkpoint holds no RNG state.
    """
    whole, weights_whole = mlp_runs["b"]  # --deterministic --seed=3, never stopped
    stopped, _ = mlp_runs["stopped"]  # the same, --epochs=1
    resumed, weights_resumed = mlp_runs["resumed"]  # then resumed by another process
    assert stopped["epochs_completed"] == 1
    assert resumed["epochs_completed"] == whole["epochs_completed"] == 2
    for key, values in whole["history"].items():
        if key not in TIMING_KEYS:
            assert values == resumed["history"][key], key
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    assert weights_whole.keys() == weights_resumed.keys()
    assert not any("seed" in name for name in weights_whole)  # no RNG state saved
    for name in weights_whole:
        if not name.startswith("save_counter"):  # How many saves this process made.
            np.testing.assert_array_equal(weights_whole[name], weights_resumed[name], err_msg=name)


@pytest.mark.slow
def test_sweep_tabulates_runs_and_reuses_finished_ones(mlp_runs, npz_dir):
    output, first = mlp_runs["sweep_dir"], mlp_runs["sweep"]
    assert first.returncode == 0, first.stderr[-3000:]
    runs = [json.load(open(output / f"smoke-seed{s}" / "metrics.json")) for s in (3, 4)]
    assert runs[0]["history"]["loss"] != runs[1]["history"]["loss"]  # the seeds took effect
    with open(output / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["experiment"] == "smoke" and rows[0]["runs"] == "2"
    accuracies = [m["test_accuracy"] for m in runs]
    assert float(rows[0]["test_accuracy_mean"]) == pytest.approx(np.mean(accuracies))
    assert float(rows[0]["test_accuracy_std"]) == pytest.approx(np.std(accuracies, ddof=1))
    assert float(rows[0]["test_loss_min"]) == pytest.approx(min(m["test_loss"] for m in runs))
    markdown = (output / "results.md").read_text()
    assert markdown.count("| smoke |") == 1
    assert f"{100 * np.mean(accuracies):.2f} ±" in markdown
    assert (output / "sweep.png").stat().st_size > 5000

    stamp = os.path.getmtime(output / "smoke-seed3" / "metrics.json")
    second = run_module("mnist_research.sweep", *_sweep_args(npz_dir, output))
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stderr.count("Reusing finished run") == 2
    assert os.path.getmtime(output / "smoke-seed3" / "metrics.json") == stamp


def test_sweep_rejects_unknown_experiment(tmp_path):
    result = run_main("mnist_research.sweep", "--experiments=nope", f"--output={tmp_path}")
    assert result.returncode == 1
    assert "nope.flags: no such experiment flagfile" in result.stderr.strip().splitlines()[-1]


def test_aggregate_by_hand():
    runs = {
        "a": [
            {
                "test_accuracy": 0.9,
                "test_loss": 0.3,
                "train_seconds": 10,
                "seed": 1,
                "epochs_completed": 5,
            },
            {
                "test_accuracy": 0.8,
                "test_loss": 0.5,
                "train_seconds": 12,
                "seed": 2,
                "epochs_completed": 4,
            },
        ]
    }
    (row,) = sweep_lib.aggregate(runs)
    assert row["epoch_seconds_mean"] == pytest.approx((10 / 5 + 12 / 4) / 2)
    assert "| 2.5 |" in sweep_lib.to_markdown([row])
    assert row["test_accuracy_mean"] == pytest.approx(0.85)
    assert row["test_accuracy_std"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
    assert (row["test_loss_min"], row["test_loss_max"]) == (0.3, 0.5)
    assert row["seeds"] == "1,2"
    assert row["test_accuracy_diff"] == 0.0


def test_welch_by_hand():
    a, b = np.array([0.98, 0.981, 0.983]), np.array([0.975, 0.976, 0.977])
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 3
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)  # Welch-Satterthwaite
    p = 2 * scipy.stats.t.sf(abs(t), df)
    assert sweep_lib.welch(a, b) == pytest.approx((t, p, df))
    assert all(np.isnan(sweep_lib.welch(a[:1], b)))


def _metrics(accuracies):
    return [
        {
            "test_accuracy": a,
            "test_loss": 0.1,
            "train_seconds": 10.0,
            "seed": s,
            "epochs_completed": 2,
        }
        for s, a in enumerate(accuracies, 1)
    ]


def test_the_table_gives_p_and_df_and_says_when_a_single_seed_has_no_spread():
    runs = {
        "base": _metrics([0.975, 0.976, 0.977]),
        "wide": _metrics([0.98, 0.981, 0.983]),
        "once": _metrics([0.99]),
    }
    rows = sweep_lib.aggregate(runs)
    _, p, df = sweep_lib.welch(np.array([0.98, 0.981, 0.983]), np.array([0.975, 0.976, 0.977]))
    markdown = sweep_lib.to_markdown(rows)
    wide, once = (line for line in markdown.splitlines() if line.startswith(("| wide", "| once")))
    assert f"+0.53 (t=+5.1, p={p:.2g}, df={df:.1f})" in wide
    assert "99.00 (n=1)" in once and "+1.40 (–)" in once
    assert "± 0.00 [" not in markdown and "nan" not in markdown
    assert markdown.splitlines()[-1].startswith("–: no test where a side has fewer than 2 seeds")
    assert np.isnan(rows[2]["test_accuracy_std"])  # results.csv says nan, not 0


def test_no_test_where_neither_side_varies_across_its_seeds():
    runs = {"base": _metrics([0.975, 0.975]), "same": _metrics([0.98, 0.98])}
    markdown = sweep_lib.to_markdown(sweep_lib.aggregate(runs))
    (same,) = (line for line in markdown.splitlines() if line.startswith("| same"))
    assert "+0.50 (–)" in same and "p=" not in markdown
    assert markdown.splitlines()[-1].startswith("–: no test where neither side varies")


@pytest.mark.slow
def test_resumed_augmented_cnn_is_bit_identical_under_deterministic(cnn_runs):
    """Stopped after epoch 1 and resumed to 2 == 2 epochs straight: same augmented batches,
    dropout masks, weights, BN statistics, Adam moments and best-epoch weights."""
    (straight, weights_straight), (first, _), (resumed, weights_resumed), folder = cnn_runs
    assert first["epochs_completed"] == 1 and resumed["epochs_completed"] == 2
    for key, values in straight["history"].items():
        if key not in TIMING_KEYS:
            assert values == resumed["history"][key], key
    assert straight["weights_sha256"] == resumed["weights_sha256"]
    assert any(name.startswith("best_weights/") for name in weights_straight)
    assert weights_straight.keys() == weights_resumed.keys()
    for name in weights_straight:
        if "save_counter" not in name:  # How many saves each checkpoint object made.
            np.testing.assert_array_equal(
                weights_straight[name], weights_resumed[name], err_msg=name
            )
    config = json.load(open(folder / "cnn_resumed" / "config.json"))
    assert config["model"]["family"] == "cnn" and config["train"]["augment"]
