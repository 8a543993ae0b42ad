"""The epoch loop calls its hooks in order, ends them however it ends, and the run keeps its own."""

import dataclasses

import pytest
import tensorflow as tf

from mnist_research.config import ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.data import pipeline, sources
from mnist_research.errors import NonFiniteLossError
from mnist_research.training import hooks, loop, profiler, runner, summaries
from mnist_research.training.checkpoint_state import CheckpointState
from mnist_research.training.history import Totals
from tests.helpers import make_digits


class Recorder(loop.Hook):
    def __init__(self, calls, stop_after=None):
        self.calls, self.stop_after = calls, stop_after

    def before_steps(self, step, num_steps):
        self.calls.append(("before", step, num_steps))

    def after_steps(self, step, done, chunk, epoch_totals):
        self.calls.append(("after", step, done, epoch_totals.count))

    def after_epoch(self, epoch, history):
        self.calls.append(("epoch", epoch, len(history["loss"])))

    def should_stop(self, history):
        return self.stop_after is not None and len(history["loss"]) >= self.stop_after

    def end(self):
        self.calls.append(("end",))


def _loop(learning_rate=1e-3, epochs=2):
    tf.keras.utils.set_random_seed(0)
    config = ExperimentConfig(
        model=ModelConfig(hidden_units=(16,), dropout_rates=(0.1,)),
        train=TrainConfig(
            batch_size=32, steps_per_loop=4, epochs=epochs, learning_rate=learning_rate
        ),
    )
    trainer = loop.Trainer(config, tf.distribute.get_strategy())
    images, labels = make_digits(320)
    train_input = pipeline.TrainInput(images, labels, 32, seed=0)
    validate = trainer.make_evaluator(pipeline.eval_dataset(images, labels, 64))

    def make_batches(first):
        return train_input.distributed(trainer.strategy, first, epochs, 10)

    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    history.update(epoch_seconds=[], examples_per_second=[])
    return trainer, make_batches, validate, history


def test_hooks_see_each_call_and_epoch_in_order_and_may_stop_the_run():
    trainer, make_batches, validate, history = _loop(epochs=3)
    calls = []
    loop.run_epochs(trainer, make_batches, validate, history, 10, [Recorder(calls, 2)])
    # 10 steps an epoch, 4 per call: calls of 4, 4 and 2 steps; stopped before epoch 3.
    epoch_1 = [
        ("before", 0, 4),
        ("after", 4, 4, 128.0),
        ("before", 4, 4),
        ("after", 8, 8, 256.0),
        ("before", 8, 2),
        ("after", 10, 10, 320.0),
        ("epoch", 1, 1),
    ]
    assert calls[:7] == epoch_1
    assert calls[7:] == [
        ("before", 10, 4),
        ("after", 14, 4, 128.0),
        ("before", 14, 4),
        ("after", 18, 8, 256.0),
        ("before", 18, 2),
        ("after", 20, 10, 320.0),
        ("epoch", 2, 2),
        ("end",),
    ]
    assert int(trainer.epoch.numpy()) == 2 and len(history["val_accuracy"]) == 2


def test_hooks_are_ended_when_the_steps_fail():
    trainer, make_batches, validate, history = _loop(learning_rate=1e30, epochs=3)
    calls = []
    with pytest.raises(NonFiniteLossError):
        loop.run_epochs(trainer, make_batches, validate, history, 10, [Recorder(calls)])
    assert calls[-1] == ("end",)
    assert ("epoch", 3, 3) not in calls


def test_the_progress_bar_comes_after_every_hook_that_logs_and_the_progress_last(tmp_path):
    trainer = _loop()[0]
    images, labels = make_digits(64)
    run = runner.RunContext(
        config=trainer.config,
        run_dir=str(tmp_path),
        chief=True,
        info={},
        datasets=sources.Splits(images, labels, images, labels, images, labels),
        trainer=trainer,
        state=CheckpointState(trainer, str(tmp_path / "checkpoints"), True, 1),
        summaries=summaries.Summaries(None),
        history={},
    )
    made = runner.standard_hooks(run, 10, verbose=True)
    assert [type(h) for h in made] == [
        hooks.TensorBoard,
        hooks.ProgressBar,
        hooks.BestEpoch,
        hooks.Checkpoint,
    ]
    assert not any(isinstance(h, hooks.ProgressBar) for h in runner.standard_hooks(run, 10, False))
    train = dataclasses.replace(run.config.train, profile_steps=(1, 2))
    profiled = dataclasses.replace(run, config=dataclasses.replace(run.config, train=train))
    assert type(runner.standard_hooks(profiled, 10, verbose=True)[0]) is profiler.Profiler


def test_the_progress_bar_starts_its_clock_before_the_epoch_s_first_call(monkeypatch):
    monkeypatch.setattr(hooks.logs, "interactive_output", lambda: True)
    bar = hooks.ProgressBar(10)
    bar.before_steps(0, 4)
    assert bar.bar is not None, "the bar exists before the first call runs"
    started = bar.bar._start
    bar.after_steps(4, 4, Totals(), Totals({"loss": 1.0, "accuracy": 2.0}, 4))
    assert bar.bar._start == started
