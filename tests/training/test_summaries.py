"""Histogram buckets match ``tf.summary.histogram``'s, read back by TensorBoard; the train graph."""

import glob

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.histogram import summary_v2
from tensorboard.util import tensor_util

from mnist_research.config import ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.training import hooks, loop, summaries
from mnist_research.training.history import Totals


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).normal(size=(784, 256)).astype(np.float32),
        np.random.default_rng(1).uniform(-3, 5, size=1000),
        np.arange(7, dtype=np.float32),
        np.full(50, 2.5, np.float32),
        np.zeros(0, np.float32),
    ],
)
def test_buckets_match_tensorboard(values, tmp_path):
    writer = summaries.Summaries(str(tmp_path))
    writer.histograms(0, [("values", values)])
    writer.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path / "train"), size_guidance={"tensors": 0})
    acc.Reload()
    ours = tensor_util.make_ndarray(acc.Tensors("values")[0].tensor_proto)
    theirs = summary_v2._buckets(tf.constant(values), 30).numpy()
    assert ours.shape == theirs.shape == (30, 3)
    np.testing.assert_allclose(ours[:, :2], theirs[:, :2], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ours[:, 2], theirs[:, 2])
    assert ours[:, 2].sum() == values.size


def test_histograms_are_written_for_tensorboard(tmp_path):
    writer = summaries.Summaries(str(tmp_path))
    kernel = tf.Variable(tf.random.normal((20, 10)))
    writer.histograms(3, [("weights/kernel", kernel), ("gradients/kernel", kernel * 2.0)])
    writer.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path / "train"), size_guidance={"tensors": 0})
    acc.Reload()
    assert set(acc.Tags()["tensors"]) == {"weights/kernel", "gradients/kernel"}
    assert acc.PluginTagToContent("histograms").keys() == {"weights/kernel", "gradients/kernel"}
    (event,) = acc.Tensors("weights/kernel")
    buckets = tensor_util.make_ndarray(event.tensor_proto)
    assert event.step == 3 and buckets.shape == (30, 3) and buckets[:, 2].sum() == 200


def test_disabled_summaries_write_nothing(tmp_path):
    summaries.Summaries(None).histograms(1, [("weights/x", tf.ones(3))])
    assert not list(tmp_path.iterdir())


def test_the_first_call_s_graph_is_written_and_tracing_stops_when_the_steps_fail(tmp_path):
    from tensorflow.python.ops import summary_ops_v2  # where trace_on keeps its state

    config = ExperimentConfig(
        model=ModelConfig(hidden_units=(8,), dropout_rates=(0.1,)),
        train=TrainConfig(batch_size=32, histograms=False),
    )
    trainer = loop.Trainer(config, tf.distribute.get_strategy())
    writer = summaries.Summaries(str(tmp_path))
    hook = hooks.TensorBoard(writer, trainer)

    @tf.function
    def step(x):
        return x * 2.0

    hook.before_steps(0, 1)  # a fresh run's first call
    assert float(step(tf.constant(1.0))) == 2.0
    hook.after_steps(3, 1, Totals(), Totals())
    assert not summary_ops_v2._current_trace_context

    hook.before_steps(0, 1)  # the first call again (a rerun in the same process) ...
    hook.end()  # ... fails: the loop ends its hooks
    assert not summary_ops_v2._current_trace_context  # a next run in the process can trace
    hook.before_steps(5, 1)  # not a first call: no tracing
    assert not summary_ops_v2._current_trace_context
    writer.close()
    graphs = [
        (value.tag, event.step)
        for path in glob.glob(str(tmp_path / "train" / "events.out.tfevents.*"))
        for event in tf.compat.v1.train.summary_iterator(path)
        for value in event.summary.value
        if value.tag == "train_steps"
    ]
    assert graphs == [("train_steps", 3)]
