"""End-of-run actions: training writes only its own files; the caller's actions run at the
end, in order, may add to metrics.json, and a finished run whose outputs one of them finds
unusable is finished again on a rerun (the export and the reports are such actions, in
mnist_research.run_outputs)."""

import json
import logging
import os

import pytest
import tensorflow as tf

from mnist_research.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.data import sources
from mnist_research.training import runner
from mnist_research.training.runner import EndOfRunAction

pytestmark = pytest.mark.slow  # trains in process: a few seconds


def _config():
    return ExperimentConfig(
        experiment="actions",
        data=DataConfig(validation_split=0.2),
        model=ModelConfig(hidden_units=(16,), dropout_rates=(0.0,)),
        train=TrainConfig(epochs=1, batch_size=64, steps_per_loop=4, histograms=False),
    )


class Recorder:
    """Two actions that log their calls; the second reports a problem while ``stale``."""

    def __init__(self):
        self.calls, self.stale = [], False

    def first(self, run, metrics, test):
        self.calls.append(("first", sorted(metrics), int(test.count)))
        metrics["first_note"] = len(self.calls)

    def second(self, run, metrics, test):
        self.calls.append(("second", "first_note" in metrics, run.chief))
        with open(os.path.join(run.run_dir, "second.txt"), "w") as f:
            f.write("written")

    def problem(self, run_dir):
        return "second.txt is stale" if self.stale else None

    def actions(self):
        return (
            EndOfRunAction("noting", self.first, every_worker=True),
            EndOfRunAction("rewriting second.txt", self.second, problem=self.problem),
        )


def test_actions_run_in_order_and_rebuild_a_finished_runs_outputs(tiny_arrays, tmp_path, caplog):
    splits = sources.split(sources.RawData(**tiny_arrays, source="tiny"), DataConfig())
    run_dir = str(tmp_path / "run")
    recorder = Recorder()

    def train():
        return runner.train_and_evaluate(
            _config(),
            run_dir,
            datasets=splits,
            verbose=False,
            strategy=tf.distribute.get_strategy(),
            actions=recorder.actions(),
        )

    metrics = train()
    (first, keys, count), second = recorder.calls
    assert first == "first" and count == 200 and "weights_sha256" in keys
    assert second == ("second", True, True)  # after the first, which added its field
    with open(os.path.join(run_dir, "metrics.json")) as f:
        written = json.load(f)
    assert written["first_note"] == metrics["first_note"] == 1 and written["finished"]
    # Training alone writes neither an export nor reports: those are run_outputs' actions.
    assert not any(
        os.path.exists(os.path.join(run_dir, name)) for name in ("export", "model.keras", "reports")
    )

    # A finished run whose outputs are sound: nothing to do, no action runs.
    with caplog.at_level(logging.INFO, logger="absl"):
        train()
    assert len(recorder.calls) == 2 and "nothing to do" in caplog.text

    # One action finds its output unusable: the run finishes again from its checkpoint.
    recorder.stale = True
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="absl"):
        again = train()
    assert "second.txt is stale; rewriting second.txt again from the checkpoint" in caplog.text
    assert [call[0] for call in recorder.calls] == ["first", "second", "first", "second"]
    assert again["weights_sha256"] == metrics["weights_sha256"]
    with open(os.path.join(run_dir, "metrics.json")) as f:
        assert json.load(f)["first_note"] == 3
