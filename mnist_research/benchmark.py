"""Benchmark: the hand-written loop vs ``model.fit`` vs the input pipeline alone.

Usage:
  python -m mnist_research.benchmark --data_dir=../shared/datasets/mnist
  python -m mnist_research.benchmark --smoke        # tiny synthetic data, seconds

All three are timed side by side in this one process, on the same data, model
and batch size, after a warm-up epoch each (tracing excluded), over several
repetitions; the table shows medians and spread, and the ratios. A fourth row
times the same math in raw TF ops with no tf.data and no Keras: the floor any
loop over this model can reach on this machine. The
``model.fit`` reference exists only here, never in the training path.
Writes ``benchmark.json`` (``--output``).
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()

import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from absl import flags, logging  # noqa: E402

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """Data, repetitions and where the JSON goes."""
    flags.DEFINE_string("data_dir", None,
                        "Real data (npz or IDX); default: synthetic MNIST-shaped.", flag_values=fv)
    flags.DEFINE_integer("epochs", 3, "Timed epochs per repetition.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("repeats", 3, "Repetitions of each measurement.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("batch_size", 128, "Global batch size.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("steps_per_loop", 50, "Steps per tf.function call of the project loop.",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_boolean("smoke", False, "Tiny synthetic data and one epoch: checks, not timings.",
                         flag_values=fv)
    flags.DEFINE_string("output", os.path.join("runs", "benchmark.json"),
                        "Where to write the JSON results.", flag_values=fv)


def _synthetic(num_train: int):
    """Random uint8 images and labels of MNIST's shape (timing only, not learnable)."""
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (num_train, 28, 28)).astype(np.uint8),
            rng.integers(0, 10, num_train).astype(np.uint8))


def _summary(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": samples}


def _time_project_loop(config, train_input, epochs, repeats):
    """Seconds per epoch of the project's loop, plus start-up to the first step."""
    import tensorflow as tf

    from mnist_research.training.epoch_loop import train_epoch
    from mnist_research.training.summaries import Summaries
    from mnist_research.training.trainer import Trainer

    strategy = tf.distribute.get_strategy()
    trainer = Trainer(config, strategy)
    steps = train_input.steps_per_epoch()

    def one_epoch(epoch):
        return train_epoch(trainer, train_input, epoch, steps, Summaries(None), verbose=False)[1]

    iterator = iter(strategy.distribute_datasets_from_function(
        lambda ctx: train_input.dataset(0, ctx)))
    trainer.train_steps(iterator, 1)
    first_step = time.perf_counter() - _PROCESS_START
    one_epoch(0)  # Warm-up: traces every loop length.
    per_epoch = []
    for r in range(repeats):
        per_epoch.append(statistics.median(one_epoch(1 + r * epochs + e) for e in range(epochs)))
    return per_epoch, first_step


def _time_model_fit(config, train_input, epochs, repeats):
    """Seconds per epoch of Keras ``model.fit`` on the identical model and data."""
    import tensorflow as tf

    from mnist_research.model import registry

    model = registry.create(config.model)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.train.learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])

    class EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    times: list[float] = []
    dataset = train_input.dataset(0).repeat()
    steps = train_input.steps_per_epoch()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[EpochTimer()])
    per_epoch = []
    for _ in range(repeats):
        times.clear()
        model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=0,
                  callbacks=[EpochTimer()])
        per_epoch.append(statistics.median(times))
    return per_epoch


def _time_pipeline(train_input, repeats):
    """Seconds to produce one epoch of batches, with nothing consuming them."""
    train_input.dataset(0).reduce(0, lambda n, _: n + 1)  # Warm-up.
    samples = []
    for r in range(repeats):
        start = time.perf_counter()
        train_input.dataset(r + 1).reduce(0, lambda n, _: n + 1).numpy()
        samples.append(time.perf_counter() - start)
    return samples


def _time_raw_floor(config, x_train, y_train, epochs, repeats):
    """Seconds per epoch of the same computation with every convenience stripped away.

    The model's math written in raw TF ops (Dense → batch-statistics BN → ReLU →
    dropout, softmax cross-entropy, the same fused Adam kernel), batches sliced
    from one in-memory tensor in a pre-shuffled order, the whole epoch in one
    ``tf.function``: no tf.data, no Keras layers, no Python per step. It even
    skips BN's moving-average updates, so it is a lower bound on what any loop
    over this model can reach on this machine, not a usable trainer.
    """
    import tensorflow as tf

    from mnist_research.training.optimizers import FusedAdam

    batch = config.train.batch_size
    steps = len(x_train) // batch
    order = np.random.default_rng(0).permutation(len(x_train))[:steps * batch]
    x = tf.constant(x_train[order].reshape(-1, 784).astype(np.float32) / 255.0)
    y = tf.one_hot(tf.constant(y_train[order].astype(np.int32)), 10)
    dims = [784, *config.model.hidden_units, 10]
    init = tf.keras.initializers.GlorotUniform(seed=0)
    kernels = [tf.Variable(init((a, b))) for a, b in zip(dims[:-1], dims[1:])]
    gammas = [tf.Variable(tf.ones(d)) for d in config.model.hidden_units]
    betas = [tf.Variable(tf.zeros(d)) for d in config.model.hidden_units]
    bias = tf.Variable(tf.zeros(10))
    variables = kernels + gammas + betas + [bias]
    optimizer = FusedAdam(config.train.learning_rate)
    optimizer.build(variables)

    def logits(h, step):
        for i, rate in enumerate(config.model.dropout_rates):
            h = h @ kernels[i]
            mean, var = tf.nn.moments(h, [0])
            h = tf.nn.relu(tf.nn.batch_normalization(h, mean, var, betas[i], gammas[i], 1e-3))
            h = tf.nn.experimental.stateless_dropout(h, rate, seed=tf.stack([step, i]))
        return h @ kernels[-1] + bias

    @tf.function
    def epoch():
        for step in tf.range(steps):
            xb, yb = x[step * batch:(step + 1) * batch], y[step * batch:(step + 1) * batch]
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
                    yb, logits(xb, step)))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    epoch()  # Warm-up (tracing).
    per_epoch = []
    for _ in range(repeats):
        times = []
        for _ in range(epochs):
            start = time.perf_counter()
            epoch().numpy()
            times.append(time.perf_counter() - start)
        per_epoch.append(statistics.median(times))
    return per_epoch


def run_benchmark(data_dir, epochs, repeats, batch_size, steps_per_loop, smoke) -> dict:
    """Runs the three measurements and returns the results dict."""
    import tensorflow as tf

    from mnist_research import config as config_lib
    from mnist_research.data import pipeline as input_pipeline
    from mnist_research.data import sources as data_lib
    from mnist_research.training.devices import cpu_name

    if data_dir:
        data_config = config_lib.DataConfig(data_dir=data_dir)
        splits = data_lib.split(data_lib.load(data_config), data_config)
        x_train, y_train, source = splits.x_train, splits.y_train, data_dir
    else:
        x_train, y_train = _synthetic(2048 if smoke else 48000)
        source = "synthetic"
    config = config_lib.ExperimentConfig(train=config_lib.TrainConfig(
        batch_size=batch_size, steps_per_loop=steps_per_loop))
    tf.keras.utils.set_random_seed(0)
    train_input = input_pipeline.TrainInput(x_train, y_train, batch_size, seed=0)
    steps = train_input.steps_per_epoch()

    loop, first_step = _time_project_loop(config, train_input, epochs, repeats)
    fit = _time_model_fit(config, train_input, epochs, repeats)
    pipeline = _time_pipeline(train_input, repeats)
    floor = _time_raw_floor(config, x_train, y_train, epochs, repeats)
    loop_median, fit_median = statistics.median(loop), statistics.median(fit)
    pipeline_median = statistics.median(pipeline)
    return {
        "data": source, "train_examples": len(x_train), "batch_size": batch_size,
        "steps_per_epoch": steps, "steps_per_loop": steps_per_loop,
        "epochs_per_repeat": epochs, "repeats": repeats, "smoke": smoke,
        "machine": {"processor": cpu_name(), "cores": _cores(), "python": platform.python_version(),
                    "tensorflow": tf.__version__},
        "project_loop_seconds_per_epoch": _summary(loop),
        "model_fit_seconds_per_epoch": _summary(fit),
        "pipeline_seconds_per_epoch": _summary(pipeline),
        "raw_tf_floor_seconds_per_epoch": _summary(floor),
        "max_speedup_vs_model_fit_at_floor": fit_median / statistics.median(floor),
        "speedup_vs_model_fit": fit_median / loop_median,
        "pipeline_rate_vs_training": loop_median / pipeline_median,
        "startup_seconds_to_first_step": first_step,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _cores() -> int:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def format_table(results: dict) -> str:
    rows = [("project loop (tf.function, tf.data)", results["project_loop_seconds_per_epoch"]),
            ("model.fit reference", results["model_fit_seconds_per_epoch"]),
            ("input pipeline alone", results["pipeline_seconds_per_epoch"]),
            ("raw-TF floor (same math, no tf.data/Keras)",
             results["raw_tf_floor_seconds_per_epoch"])]
    lines = [f"{results['data']}: {results['train_examples']} examples, batch "
             f"{results['batch_size']}, {results['steps_per_epoch']} steps/epoch; "
             f"{results['machine']['processor']} ({results['machine']['cores']} cores)",
             "", "| what | s/epoch median | min | max |", "|---|---|---|---|"]
    for name, s in rows:
        lines.append(f"| {name} | {s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f} |")
    lines += ["",
              f"speed-up vs model.fit: {results['speedup_vs_model_fit']:.2f}x",
              f"pipeline delivers batches {results['pipeline_rate_vs_training']:.1f}x faster "
              f"than training consumes them",
              f"speed-up a zero-overhead loop would reach vs model.fit: "
              f"{results['max_speedup_vs_model_fit_at_floor']:.2f}x",
              f"start-up (process start -> first step): "
              f"{results['startup_seconds_to_first_step']:.1f} s",
              f"peak RSS: {results['peak_rss_mb']:.0f} MB"]
    return "\n".join(lines)


def main(argv):
    del argv
    from mnist_research.errors import run_guarded
    from mnist_research.files import write_json

    def body() -> int:
        results = run_benchmark(FLAGS.data_dir, 1 if FLAGS.smoke else FLAGS.epochs,
                                1 if FLAGS.smoke else FLAGS.repeats, FLAGS.batch_size,
                                FLAGS.steps_per_loop, FLAGS.smoke)
        print(format_table(results))
        write_json(FLAGS.output, results)
        logging.info("Wrote %s", FLAGS.output)
        return 0

    sys.exit(run_guarded(body))


def run():
    from mnist_research import command
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
