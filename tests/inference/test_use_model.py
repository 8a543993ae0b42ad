"""Using a finished run: the SavedModel export, the .keras file, evaluate and predict."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REAL_MNIST, REPO, make_digits, run_main, run_module

# Commands run in this process (tests.helpers.run_main) unless the process is the point:
# the export loaded by a fresh Python, and predict's lines on a terminal.


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A copy of the shared finished run, for a command that writes into its run dir."""
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run[0], run_dir)
    return run_dir


@pytest.mark.slow
def test_saved_model_in_fresh_process_matches_in_process_model(finished_run, tmp_path):
    run_dir, _ = finished_run
    images, _ = make_digits(37, seed=9)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import numpy as np, tensorflow as tf, sys\n"
        "served = tf.saved_model.load(sys.argv[1])\n"
        "images = np.load(sys.argv[2])\n"
        "out = served.signatures['serving_default'](images=tf.constant(images))\n"
        "flat = served.signatures['serve_flat'](pixels=tf.constant("
        "images.reshape(-1, 784).astype('float32') / 255.0))\n"
        "np.savez(sys.argv[3], probabilities=out['probabilities'].numpy(), "
        "classes=out['classes'].numpy(), flat=flat['probabilities'].numpy())\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            os.path.join(run_dir, "export"),
            str(tmp_path / "images.npy"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    served = np.load(tmp_path / "out.npz", allow_pickle=False)

    import tensorflow as tf

    import mnist_research.model.mlp  # noqa: F401  (registers the Keras classes)
    from mnist_research.inference import finished_run as restore

    keras_model = tf.keras.models.load_model(os.path.join(run_dir, "model.keras"))
    expected = keras_model(images.reshape(-1, 784).astype("float32") / 255.0).numpy()
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(served["flat"], expected, atol=1e-5)
    np.testing.assert_array_equal(served["classes"], expected.argmax(axis=1))
    logits_fn, _ = restore.load_logits_fn(run_dir, from_checkpoint=True)
    np.testing.assert_allclose(tf.nn.softmax(logits_fn(images)).numpy(), expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--from_checkpoint"]])
def test_evaluate_equals_the_runs_test_metrics(run_copy, extra):
    run_dir = run_copy
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    result = run_main("mnist_research.evaluate", f"--run_dir={run_dir}", *extra)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"accuracy {metrics['test_accuracy']:.4f}" in result.stdout
    evaluation = json.load(open(os.path.join(run_dir, "evaluation-test.json")))
    assert evaluation["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-9)
    assert evaluation["loss"] == pytest.approx(metrics["test_loss"], rel=1e-4)
    for key in ("precision", "recall", "f1", "support"):
        assert evaluation["per_class"][key] == pytest.approx(metrics["per_class"][key])
    assert evaluation["confusion_matrix"] == metrics["confusion_matrix"]


@pytest.mark.slow
def test_evaluate_validation_split_and_errors(run_copy, tmp_path):
    run_dir = run_copy
    result = run_main("mnist_research.evaluate", f"--run_dir={run_dir}", "--split=validation")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(128 examples)" in result.stdout  # the last 20 % of the 640 tiny training images
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    evaluation = json.load(open(os.path.join(run_dir, "evaluation-validation.json")))
    assert evaluation["accuracy"] == pytest.approx(metrics["history"]["val_accuracy"][-1])
    (tmp_path / "empty").mkdir()
    missing = run_main("mnist_research.evaluate", f"--run_dir={tmp_path / 'empty'}")
    assert missing.returncode == 1
    assert "config.json: not found" in missing.stderr.strip().splitlines()[-1]


def _write_digit_png(path, image, background=230):
    from PIL import Image

    big = Image.fromarray(255 - image).resize((140, 140), Image.BILINEAR)
    canvas = Image.new("L", (300, 200), background)
    canvas.paste(big, (20, 30))
    canvas.save(path)


@pytest.mark.slow
def test_predict_classifies_good_files_and_reports_bad_ones(finished_run, tmp_path):
    run_dir, _ = finished_run
    images, labels = make_digits(4, seed=5)
    good = []
    for i, image in enumerate(images):
        good.append(str(tmp_path / f"digit{i}.png"))
        _write_digit_png(good[-1], image)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    bad = [str(tmp_path / "missing.png"), str(tmp_path / "notes.txt"), str(tmp_path / "empty.png")]
    out_dir = tmp_path / "seen"
    result = run_main(
        "mnist_research.predict",
        f"--run_dir={run_dir}",
        "--json",
        f"--save_preprocessed={out_dir}",
        *good[:2],
        *bad,
        *good[2:],
    )
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)
    by_path = {r["path"]: r for r in report["results"]}
    assert len(by_path) == 7
    for path in good:
        r = by_path[path]
        assert 0 <= r["digit"] <= 9 and 0.0 < r["probability"] <= 1.0
        assert [d for d, _ in r["top3"]][0] == r["digit"] and len(r["top3"]) == 3
        assert r["class_name"] == str(r["digit"])  # MNIST's classes are the digits
        assert os.path.exists(r["preprocessed"])
    assert "no such file" in by_path[bad[0]]["error"]
    assert "not an image" in by_path[bad[1]]["error"]
    assert "empty file" in by_path[bad[2]]["error"]
    assert len(os.listdir(out_dir)) == 4

    # What a user's terminal shows: a real process, predict's one of the file.
    text = run_module("mnist_research.predict", f"--run_dir={run_dir}", *good[:2])
    assert text.returncode == 0, text.stderr[-2000:]
    lines = text.stdout.strip().splitlines()
    assert len(lines) == 2 and all("top-3:" in line for line in lines)


def test_predict_without_export_says_so(tmp_path):
    result = run_main("mnist_research.predict", f"--run_dir={tmp_path}", "x.png")
    assert result.returncode == 1
    assert "no SavedModel" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.exists(os.path.join(REAL_MNIST, "mnist.npz")),
    reason="real MNIST (../shared/datasets/mnist) not present",
)
def test_real_mnist_rerendered_digits_are_recognised(tmp_path):
    run_dir = str(tmp_path / "real")
    result = run_main(
        "mnist_research.train",
        f"--flagfile={os.path.join(REPO, 'experiments', 'baseline.flags')}",
        f"--data_dir={REAL_MNIST}",
        f"--run_dir={run_dir}",
        "--epochs=3",
        "--histograms=false",
        "--jit_compile=false",  # the plain step: no XLA compilation, the same model (~3 s less)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))

    from mnist_research.inference import finished_run as restore
    from mnist_research.inference import recognize

    with np.load(os.path.join(REAL_MNIST, "mnist.npz"), allow_pickle=False) as f:
        x_test, y_test = f["x_test"][:300], f["y_test"][:300]
    paths = []
    for i, image in enumerate(x_test):
        paths.append(str(tmp_path / f"{i}.{'png' if i % 2 else 'jpg'}"))
        _write_digit_png(paths[-1], image)
    logits_fn, _ = restore.load_logits_fn(run_dir)
    results = recognize.classify(paths, logits_fn)
    accuracy = np.mean([r["digit"] == y for r, y in zip(results, y_test)])
    assert accuracy >= metrics["test_accuracy"] - 0.05, (accuracy, metrics["test_accuracy"])


@pytest.mark.slow
def test_predict_robustness_never_writes_into_a_user_s_folder(finished_run, tmp_path):
    run_dir, _ = finished_run
    examples = tmp_path / "mine"
    (examples / "00").mkdir(parents=True)
    (examples / "00" / "0.jpg").write_bytes(b"a user's photo")
    result = run_main(
        "mnist_research.predict_robustness",
        f"--run_dir={run_dir}",
        "--num=2",
        "--only=JPEG quality 75",
        f"--examples_dir={examples}",
    )
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "did not write" in line and str(examples) in line
    assert (examples / "00" / "0.jpg").read_bytes() == b"a user's photo"
    assert sorted(os.listdir(examples)) == ["00"]


@pytest.mark.slow
def test_predict_robustness_prints_a_table_per_condition(finished_run, tmp_path):
    run_dir, _ = finished_run
    examples = tmp_path / "examples"
    result = run_main(
        "mnist_research.predict_robustness",
        f"--run_dir={run_dir}",
        "--num=12",
        "--only=JPEG",
        f"--examples_dir={examples}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| condition |")
    names = [row.split(" | ")[0][2:] for row in rows[1:]]
    assert names == [
        "clean 28×28 test digits (no rendering)",
        "JPEG quality 75",
        "JPEG quality 50",
        "JPEG quality 25",
    ]
    assert "12 test digits" in result.stdout
    assert sorted(os.listdir(examples / "00")) == [
        "0.jpg",
        "1.jpg",
        "2.jpg",
        "3.jpg",
        "4.jpg",
        "5.jpg",
        "6.jpg",
        "7.jpg",
        "condition.txt",
    ]
    wrong = run_main(
        "mnist_research.predict_robustness", f"--run_dir={run_dir}", "--only=underwater"
    )
    assert wrong.returncode == 1
    assert "--only=underwater: matches none of" in wrong.stderr.strip().splitlines()[-1]


def test_predictions_name_the_classes_of_the_run_dataset():
    from mnist_research import config as config_lib
    from mnist_research import predict

    assert predict._label(3, config_lib.DATASETS["fashion_mnist"].class_names) == "3 Dress"
    assert predict._label(7, config_lib.DATASETS["mnist"].class_names) == "7"
