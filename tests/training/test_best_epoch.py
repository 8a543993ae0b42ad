"""Best-epoch selection: the decisions on scripted curves, and a run that stops and exports."""

import json
import logging as std_logging
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from mnist_research import run_outputs
from mnist_research.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.data import sources
from mnist_research.inference import finished_run
from mnist_research.model import registry
from mnist_research.training import history, hooks, runner
from mnist_research.training.history import Totals
from mnist_research.training.loop import Trainer

# The train command's end of a run: the export (checked below) and the reports.
ACTIONS = run_outputs.end_of_run_actions()
CURVE = [0.50, 0.70, 0.90, 0.85, 0.90, 0.88, 0.95, 0.80]


@pytest.mark.parametrize("patience, stop_after", [(1, 4), (2, 5), (3, 6), (4, None), (0, None)])
def test_stops_after_patience_epochs_without_improvement(patience, stop_after):
    stops = [n for n in range(1, len(CURVE) + 1) if history.should_stop(CURVE[:n], patience)]
    assert (stops[0] if stops else None) == stop_after
    if stop_after:
        assert history.best_epoch(CURVE[:stop_after]) == 3  # A tie (epoch 5) is no gain.


def test_best_epoch_and_improvement():
    assert history.best_epoch([]) == 0
    assert [history.best_epoch(CURVE[:n]) for n in range(1, 9)] == [1, 2, 3, 3, 3, 3, 7, 7]
    captured = []
    hook = hooks.BestEpoch(types.SimpleNamespace(capture=lambda: captured.append(epoch)), 0)
    for epoch in range(1, 9):
        hook.after_epoch(epoch, {"val_accuracy": CURVE[:epoch]})
    assert captured == [1, 2, 3, 7]  # the weights are copied when an epoch improves
    summary = history.selection(CURVE[:5], patience=2, epochs=10, restore_best=True)
    assert summary == {
        "best_epoch": 3,
        "best_val_accuracy": 0.9,
        "stopped_early": True,
        "early_stopping_patience": 2,
        "exported_epoch": 3,
    }
    assert history.selection(CURVE, 0, 8, False)["exported_epoch"] == 8


def _scripted_validation(monkeypatch, curve):
    """Validation accuracy follows ``curve`` (by epoch); the test set is evaluated for real."""
    real = Trainer.make_evaluator
    made = []

    def make_evaluator(self, dataset):
        evaluate = real(self, dataset)
        made.append(dataset)
        if len(made) > 1:  # The first evaluator a run makes is the validation one.
            return evaluate

        def scripted():
            totals = evaluate()
            epoch = int(self.epoch.numpy())  # Epochs completed before this validation.
            return Totals({**totals.sums, "accuracy": curve[epoch] * totals.count}, totals.count)

        return scripted

    monkeypatch.setattr(Trainer, "make_evaluator", make_evaluator)
    return made


def _config(epochs, patience):
    # The plain step (no XLA compilation: about half of each tiny run's training time): what
    # is checked is which epoch is kept; the XLA step's own tests are in test_trainer.
    return ExperimentConfig(
        experiment="early",
        data=DataConfig(validation_split=0.2),
        model=ModelConfig(hidden_units=(32,), dropout_rates=(0.1,)),
        train=TrainConfig(
            epochs=epochs,
            batch_size=32,
            steps_per_loop=4,
            histograms=False,
            early_stopping_patience=patience,
            restore_best=True,
            max_to_keep=10,
            jit_compile=False,
        ),
    )


def _weights(checkpoint_prefix):
    model = registry.create(_config(1, 0).model)
    tf.train.Checkpoint(model=model).read(checkpoint_prefix).expect_partial()
    return model


@pytest.mark.slow
def test_run_stops_resumes_and_exports_the_best_epoch(monkeypatch, tmp_path, tiny_arrays, caplog):
    splits = sources.split(sources.RawData(**tiny_arrays, source="tiny"), DataConfig())
    run_dir = str(tmp_path / "run")
    _scripted_validation(monkeypatch, CURVE)
    # Killed-and-resumed: the first process gets through epoch 4 only. Its export is
    # replaced by the best epoch's below; its reports (~2 s) are rewritten unread: left out.
    first = runner.train_and_evaluate(
        _config(4, 2), run_dir, datasets=splits, verbose=False, actions=ACTIONS[:1]
    )
    assert first["epochs_completed"] == 4 and not first["stopped_early"]
    _scripted_validation(monkeypatch, CURVE)
    metrics = runner.train_and_evaluate(
        _config(8, 2), run_dir, datasets=splits, verbose=False, actions=ACTIONS
    )
    assert metrics["epochs_completed"] == 5 and metrics["stopped_early"]
    assert (metrics["best_epoch"], metrics["exported_epoch"]) == (3, 3)
    assert metrics["best_val_accuracy"] == pytest.approx(0.9)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        assert json.load(f)["best_epoch"] == 3
    # More epochs change nothing once a run has stopped early, and the log says so.
    with caplog.at_level(std_logging.INFO, logger="absl"):
        again = runner.train_and_evaluate(
            _config(10, 2), run_dir, datasets=splits, verbose=False, actions=ACTIONS
        )
    assert again["epochs_completed"] == 5
    assert "stopped early after 5 epochs" in caplog.text
    assert "larger --epochs" not in caplog.text

    checkpoints = os.path.join(run_dir, "checkpoints")
    epoch3 = _weights(os.path.join(checkpoints, "ckpt-3"))
    best = _weights(tf.train.latest_checkpoint(os.path.join(checkpoints, "best")))
    assert tf.train.latest_checkpoint(os.path.join(checkpoints, "best")).endswith("ckpt-3")
    last = _weights(os.path.join(checkpoints, "ckpt-5"))
    for a, b in zip(epoch3.variables, best.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert any(
        not np.array_equal(a.numpy(), c.numpy())
        for a, c in zip(epoch3.trainable_variables, last.trainable_variables)
    )

    images = splits.x_test
    exported = finished_run.ExportedClassifier(os.path.join(run_dir, "export")).logits(images)
    expected = epoch3(images.reshape(-1, 784).astype("float32") / 255.0, return_logits=True).numpy()
    np.testing.assert_allclose(exported, expected, rtol=1e-5, atol=1e-5)
    # --from_checkpoint loads the exported (best) epoch too, not the last one.
    logits_fn, prefix = finished_run.load_logits_fn(run_dir, from_checkpoint=True)
    assert prefix.endswith(os.path.join("best", "ckpt-3")), prefix
    np.testing.assert_allclose(logits_fn(images), expected, rtol=1e-5, atol=1e-5)
    assert metrics["test_accuracy"] == pytest.approx(
        float((expected.argmax(1) == splits.y_test).mean())
    )
