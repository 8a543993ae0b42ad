"""TFLite and ONNX exports of a finished run give the SavedModel's answers, or are refused."""

import json
import os
import shutil

import numpy as np
import pytest

from tests.helpers import run_main

pytestmark = pytest.mark.slow


@pytest.fixture
def run_copy(finished_run, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run[0], run_dir)
    return run_dir


def _test_split(run_dir):
    from mnist_research.inference import finished_run as restore

    return restore.load_split(restore.load_config(run_dir), "test")


def test_tflite_converter_on_the_saved_model_gives_its_logits(finished_run):
    """The standard route, TFLiteConverter.from_saved_model(RUN/export), keeps the weights."""
    import tensorflow as tf

    from mnist_research.inference import export as export_lib
    from mnist_research.inference import finished_run as restore
    from mnist_research.inference import portable

    export_dir = os.path.join(finished_run[0], export_lib.EXPORT_DIR)
    model = tf.lite.TFLiteConverter.from_saved_model(export_dir).convert()
    images, _ = _test_split(finished_run[0])
    converted = portable.logits_function(model, ".tflite", 10)(images)
    expected = restore.ExportedClassifier(export_dir).logits(images)
    np.testing.assert_allclose(converted, expected, atol=1e-4)


@pytest.mark.parametrize("fmt", ["tflite", "tflite_int8", "onnx"])
def test_export_writes_a_file_that_evaluate_scores_like_the_saved_model(run_copy, fmt):
    from mnist_research.inference import finished_run as restore
    from mnist_research.inference import portable
    from mnist_research.rundir import layout

    result = run_main("mnist_research.export", f"--run_dir={run_copy}", f"--format={fmt}")
    assert result.returncode == 0, result.stderr[-3000:]
    path = os.path.join(run_copy, layout.PORTABLE_FILES[fmt])
    assert result.stdout.startswith(f"{path}: the SavedModel's class on ")
    assert sorted(n for n in os.listdir(run_copy) if n.startswith(".tmp-")) == []

    images, labels = _test_split(run_copy)
    reference = restore.load_logits_fn(run_copy)[0](images).argmax(axis=1)
    classes = portable.load_logits_fn(path, 10)(images).argmax(axis=1)
    if fmt == "tflite_int8":
        assert np.mean(classes == labels) >= np.mean(reference == labels) - 0.005
    else:
        assert np.mean(classes == reference) >= 0.999

    result = run_main("mnist_research.evaluate", f"--run_dir={run_copy}", f"--model={path}")
    assert result.returncode == 0, result.stderr[-3000:]
    evaluation = os.path.join(run_copy, f"evaluation-test-{os.path.basename(path)}.json")
    summary = json.load(open(evaluation))
    assert summary["model"] == path
    assert summary["accuracy"] == pytest.approx(np.mean(classes == labels))


def test_a_model_that_disagrees_is_refused_and_nothing_is_written(run_copy):
    """Checked against another model's answers (an untrained one), the conversion is refused."""
    from mnist_research.inference import export as export_lib
    from mnist_research.inference import finished_run as restore
    from mnist_research.inference import portable
    from mnist_research.model import registry

    config = restore.load_config(run_copy)
    untrained = registry.create(config.model)
    other = export_lib.export_saved_model(untrained, os.path.join(run_copy, "other"))
    before = sorted(os.listdir(run_copy))
    with pytest.raises(portable.ExportRefused, match=r"export\.tflite not written: it gives"):
        portable.export(
            os.path.join(run_copy, export_lib.EXPORT_DIR),
            "tflite",
            _test_split(run_copy),
            restore.ExportedClassifier(other).logits,
            None,
            config.model.num_classes,
        )
    assert sorted(os.listdir(run_copy)) == before


def test_the_checks_thresholds():
    from mnist_research.inference.portable import Verified

    assert Verified(0.999, 0.9, 0.9, 10000).problem("onnx") is None
    assert "99.80% of the 10000" in Verified(0.998, 0.9, 0.9, 10000).problem("tflite")
    assert Verified(0.5, 0.976, 0.98, 10000).problem("tflite_int8") is None
    assert "0.60 points below" in Verified(1.0, 0.974, 0.98, 10000).problem("tflite_int8")


@pytest.mark.parametrize("kind", [".tflite", ".onnx"])
def test_a_damaged_or_foreign_file_is_one_error_line(finished_run, tmp_path, kind):
    import tensorflow as tf

    damaged = tmp_path / f"damaged{kind}"
    damaged.write_bytes(os.urandom(2000))
    plain = tf.keras.Sequential([tf.keras.Input((784,)), tf.keras.layers.Dense(10)])
    foreign = tmp_path / f"foreign{kind}"
    if kind == ".tflite":
        foreign.write_bytes(tf.lite.TFLiteConverter.from_keras_model(plain).convert())
    else:
        tf2onnx = pytest.importorskip("tf2onnx")
        spec = tf.TensorSpec([None, 784], tf.float32, name="x")
        tf2onnx.convert.from_function(
            tf.function(plain), input_signature=[spec], output_path=str(foreign)
        )
    for path, reason in (
        (damaged, "not a"),
        (foreign, "not a"),
        (tmp_path / f"missing{kind}", "No such"),
    ):
        result = run_main(
            "mnist_research.evaluate", f"--run_dir={finished_run[0]}", f"--model={path}"
        )
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}: {reason}"), lines
