"""What a run writes for people to read: TensorBoard events and the reports."""

import base64
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from tests.helpers import SMOKE, find_chromium, run_main

REPORT_PNGS = ("curves", "samples", "confusion_matrix", "per_class", "mistakes")


def accumulator(folder):
    acc = event_accumulator.EventAccumulator(folder, size_guidance={"tensors": 0})
    acc.Reload()
    return acc


@pytest.mark.slow  # reads the finished run the session trains once
def test_histograms_images_and_graph_in_train_events(finished_run):
    run_dir, _ = finished_run
    acc = accumulator(os.path.join(run_dir, "train"))
    tags = acc.Tags()["tensors"]
    weight_tags = [t for t in tags if t.startswith("histograms/weights/")]
    assert any(t.endswith("block_0/dense/kernel") for t in weight_tags)
    assert any(t.endswith("logits/bias") for t in weight_tags)
    for kind in ("moving_mean", "moving_variance"):
        assert sum(t.startswith("histograms/batch_norm/") and t.endswith(kind) for t in tags) == 3
    grads = [t for t in tags if t.startswith("histograms/gradients/")]
    assert len(grads) == len(weight_tags)
    # TensorBoard's Time Series tab (scalars, histograms, images; text has its own tab)
    # sorts card groups by the tag's first component: accuracy and loss come first.
    cards = set(tags) - set(acc.PluginTagToContent("text"))
    assert sorted({t.split("/")[0] for t in cards})[0] == "epoch"
    for tag in weight_tags + grads:
        events = acc.Tensors(tag)
        # Every 5th epoch (--histogram_every_epochs) and the last: epoch 2 of 2 only.
        assert [e.step for e in events] == [2], tag
        buckets = tensor_util.make_ndarray(events[-1].tensor_proto)
        assert buckets.ndim == 2 and buckets.shape[1] == 3 and buckets[:, 2].sum() > 0
    kernel = tensor_util.make_ndarray(acc.Tensors(weight_tags[0])[-1].tensor_proto)
    assert kernel[:, 2].sum() == 784 * 256  # every weight of block_0's kernel counted
    for name in ("samples", "confusion_matrix", "mistakes"):
        events = acc.Tensors(f"images/{name}")
        assert [e.step for e in events] == [2]  # written once, at the end of the run
        width, height, png = tensor_util.make_ndarray(events[0].tensor_proto)
        assert int(width) > 300 and int(height) > 100 and png[:4] == b"\x89PNG"
    graph_tags = acc.PluginTagToContent("graph_run_metadata_graph")
    assert "train_steps" in graph_tags


@pytest.mark.slow  # reads the finished run the session trains once
def test_scalars_include_learning_rate_and_throughput(finished_run):
    run_dir, _ = finished_run
    acc = accumulator(os.path.join(run_dir, "train"))
    lr = [
        float(tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors("epoch/learning_rate")
    ]
    assert lr == pytest.approx([1e-3, 1e-3])
    eps = [
        float(tensor_util.make_ndarray(e.tensor_proto))
        for e in acc.Tensors("epoch/examples_per_second")
    ]
    assert all(v > 0 for v in eps)


@pytest.mark.slow  # reads the finished run the session trains once
def test_hparams_session_with_final_metrics(finished_run):
    run_dir, _ = finished_run
    acc = accumulator(run_dir)
    content = acc.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    names = {h.name for h in experiment.experiment.hparam_infos}
    assert {
        "model/hidden_units",
        "model/dropout_rates",
        "model/batch_norm",
        "optimizer/learning_rate",
        "optimizer/batch_size",
        "run/epochs",
        "system/strategy",
        "system/device",
        "experiment/seed",
    } <= names
    metric_tags = {m.name.tag for m in experiment.experiment.metric_infos}
    assert {"test/accuracy", "test/loss", "epoch/accuracy"} <= metric_tags
    session = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    assert session.hparams["model/hidden_units"].string_value == "256,128,64"
    assert session.hparams["run/epochs"].string_value == "2"
    assert session.hparams["optimizer/learning_rate"].number_value == 1e-3
    assert session.hparams["model/family"].string_value == "mlp"
    assert session.hparams["run/augment"].bool_value is False
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    accuracy = float(tensor_util.make_ndarray(acc.Tensors("test/accuracy")[-1].tensor_proto))
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-6)


@pytest.mark.slow  # reads the finished run the session trains once
def test_every_report_is_a_real_image_and_metrics_have_per_class(finished_run):
    run_dir, _ = finished_run
    from matplotlib import image

    for name in REPORT_PNGS:
        pixels = image.imread(os.path.join(run_dir, "reports", f"{name}.png"))
        assert pixels.shape[0] > 200 and pixels.shape[1] > 500, name
        # A blank figure is one flat colour; a row of a few digits on white already has
        # a grey-level spread of about 0.04 (mistakes.png when the model makes few).
        assert pixels[..., :3].std() > 0.02, f"{name} looks blank"
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum() == metrics["test_examples"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["test_accuracy"])
    assert len(metrics["per_class"]["f1"]) == 10
    assert metrics["per_class"]["support"] == matrix.sum(axis=1).tolist()


@pytest.mark.slow  # reads the finished run the session trains once
def test_report_html_is_self_contained_with_the_runs_numbers(finished_run):
    run_dir, _ = finished_run
    page = open(os.path.join(run_dir, "reports", "report.html"), encoding="utf-8").read()
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert f"{metrics['test_accuracy']:.4f}" in page and f"{metrics['test_loss']:.4f}" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(REPORT_PNGS)
    assert all(base64.b64decode(img)[:4] == b"\x89PNG" for img in images)
    assert not re.search(r'(src|href)="(https?:)?//', page), "page must not fetch anything"
    for value in metrics["per_class"]["recall"]:
        assert f"{value:.4f}" in page
    assert (
        f"id='best_epoch'>{metrics['best_epoch']} (val {metrics['best_val_accuracy']:.4f})" in page
    )


@pytest.mark.slow  # reads the finished run the session trains once
@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on this machine")
def test_report_html_renders_in_headless_chromium(finished_run, tmp_path):
    run_dir, _ = finished_run
    shot = tmp_path / "report.png"
    profile = tempfile.mkdtemp(dir=tmp_path)
    result = subprocess.run(
        [
            find_chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,2400",
            f"--screenshot={shot}",
            "file://" + os.path.abspath(os.path.join(run_dir, "reports", "report.html")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    from matplotlib import image

    pixels = image.imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (2400, 1400)
    # Rendered, not blank: the figures give many distinct colours and dark text.
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200
    assert (pixels.mean(axis=2) < 0.2).mean() > 0.001


@pytest.mark.slow  # reads the finished run the session trains once
def test_report_command_regenerates_every_report(finished_run, tmp_path):
    run_dir, _ = finished_run
    copy = str(tmp_path / "copy")
    shutil.copytree(run_dir, copy)
    shutil.rmtree(os.path.join(copy, "reports"))
    result = run_main("mnist_research.report", f"--run_dir={copy}")
    assert result.returncode == 0, result.stderr[-2000:]
    made = sorted(os.path.basename(p) for p in glob.glob(os.path.join(copy, "reports", "*")))
    assert made == sorted([f"{n}.png" for n in REPORT_PNGS] + ["report.html"])
    metrics = json.load(open(os.path.join(copy, "metrics.json")))
    page = open(os.path.join(copy, "reports", "report.html"), encoding="utf-8").read()
    assert f"{metrics['test_accuracy']:.4f}" in page


def test_report_command_refuses_an_unfinished_run(tmp_path):
    result = run_main("mnist_research.report", f"--run_dir={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.slow  # trains (in this process)
def test_profile_steps_write_a_profile(npz_dir, tmp_path):
    run_dir = str(tmp_path / "profiled")
    result = run_main(
        "mnist_research.train",
        SMOKE,
        f"--data_dir={npz_dir}",
        f"--run_dir={run_dir}",
        "--epochs=1",
        "--profile_steps=2,4",
        "--histograms=false",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert glob.glob(os.path.join(run_dir, "train", "plugins", "profile", "*", "*.xplane.pb"))
    bad = run_main(
        "mnist_research.train",
        SMOKE,
        f"--data_dir={npz_dir}",
        f"--run_dir={tmp_path / 'x'}",
        "--profile_steps=5,2",
    )
    assert not os.path.exists(tmp_path / "x")
    assert bad.returncode != 0 and "profile_steps" in bad.stderr
