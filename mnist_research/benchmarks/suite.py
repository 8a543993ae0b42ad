"""The whole benchmark: every comparison, side by side, repeated; one results dict.

Parts (``parts``):

- ``steady``: in this process, per repetition and one after another, the
  project's loop, ``model.fit`` of the identical model and pipeline (without
  and with XLA) and the original notebook's ``model.fit``; epochs with their validation
  passes. Then the input pipeline alone and the raw-TF floor, without and with
  XLA.
- ``peers``: whole 15-epoch runs (build, compile, every epoch and validation
  pass) of the project, PyTorch and JAX, each in its own process.
- ``whole``: the notebook script and the baseline ``train`` command, process
  start to exit, back to back; then the command with its phases timed.

Timings on a shared machine are noisy: each repetition runs every side once,
ratios are taken within a repetition, and medians are reported with the
samples.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import tempfile
from collections.abc import Callable

import numpy as np

from mnist_research.benchmarks import floors, peers, steady, whole

PARTS = ("steady", "peers", "whole")


def summary(samples: list[float]) -> dict:
    """Median, min, max and the samples."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": list(samples),
    }


def steady_seconds(epoch_seconds: list[float]) -> float:
    """The steady-state epoch: the median of epochs 2..N (epoch 1 alone if N is 1)."""
    return statistics.median(epoch_seconds[1:] or epoch_seconds)


def write_synthetic(folder: str, num_train: int, num_test: int) -> str:
    """Random MNIST-shaped ``mnist.npz`` (timing only, not learnable); returns ``folder``."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(num_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(num_test) % 10).astype(np.uint8),
    }
    np.savez(os.path.join(folder, "mnist.npz"), **arrays)
    return folder


def _steady(data, epochs: int, repeats: int, steps_per_loop: int, log: Callable) -> dict:
    runs = {runner: [] for runner in steady.RUNNERS}
    for repeat in range(repeats):
        for runner in steady.RUNNERS:
            runs[runner].append(steady.run(runner, data, epochs, steps_per_loop=steps_per_loop))
            log(
                f"steady {repeat + 1}/{repeats} {runner}: "
                f"{steady_seconds(runs[runner][-1]):.3f} s/epoch"
            )
    results = {
        runner: {
            "epoch_seconds": samples,
            "steady_seconds": summary([steady_seconds(s) for s in samples]),
            "first_epoch_seconds": summary([s[0] for s in samples]),
            "total_seconds": summary([sum(s) for s in samples]),
        }
        for runner, samples in runs.items()
    }
    project = [steady_seconds(s) for s in runs["project"]]
    results["speedup"] = {
        runner: summary([steady_seconds(s) / p for s, p in zip(runs[runner], project)])
        for runner in steady.RUNNERS
        if runner != "project"
    }
    return results


def _floors(data, epochs: int, repeats: int) -> dict:
    from mnist_research.data import pipeline

    train_input = pipeline.TrainInput(data.x_train, data.y_train, 128, seed=0)
    return {
        "pipeline_seconds": summary(floors.pipeline_seconds(train_input, repeats)),
        "raw_tf_seconds": summary(
            floors.raw_floor_seconds(data.x_train, data.y_train, epochs, jit_compile=False)
        ),
        "raw_tf_xla_seconds": summary(
            floors.raw_floor_seconds(data.x_train, data.y_train, epochs, jit_compile=True)
        ),
    }


def _peers(data_dir: str, epochs: int, repeats: int, log: Callable) -> dict:
    runs = {runner: [] for runner in peers.RUNNERS}
    for repeat in range(repeats):
        for runner in peers.RUNNERS:
            result = whole.peer(runner, data_dir, epochs)
            runs[runner].append(result)
            log(
                f"peers {repeat + 1}/{repeats} {runner}: "
                + (
                    result["skipped"]
                    if "skipped" in result
                    else f"{result['total_seconds']:.1f} s, test {result['test_accuracy']:.4f}"
                )
            )
    results = {}
    for runner, samples in runs.items():
        if any("skipped" in s for s in samples):
            results[runner] = {"skipped": samples[0].get("skipped", "failed")}
            continue
        results[runner] = {
            "runs": samples,
            "total_seconds": summary([s["total_seconds"] for s in samples]),
            "test_accuracy": summary([s["test_accuracy"] for s in samples]),
        }
    return results


def _whole(data_dir: str, epochs: int, repeats: int, log: Callable) -> dict:
    notebook, train, phases = [], [], []
    for repeat in range(repeats):
        notebook.append(whole.notebook_script(data_dir, epochs))
        train.append(whole.train(data_dir, epochs))
        log(
            f"whole {repeat + 1}/{repeats}: notebook script "
            f"{notebook[-1]['whole_seconds']:.1f} s, "
            f"train {train[-1]['whole_seconds']:.1f} s"
        )
        phases.append(whole.train_phases(data_dir, epochs))
    return {
        "notebook_script": {
            "runs": notebook,
            "whole_seconds": summary([s["whole_seconds"] for s in notebook]),
        },
        "train": {
            "runs": train,
            "whole_seconds": summary([t["whole_seconds"] for t in train]),
            "test_accuracy": summary([t["test_accuracy"] for t in train]),
        },
        "train_vs_notebook": summary(
            [t["whole_seconds"] / s["whole_seconds"] for t, s in zip(train, notebook)]
        ),
        "phases": phases,
    }


def run(
    data_dir: str | None,
    epochs: int,
    repeats: int,
    steps_per_loop: int,
    parts=PARTS,
    log: Callable = print,
) -> dict:
    """Runs the ``parts`` and returns every figure (see the module docstring)."""
    import tensorflow as tf

    from mnist_research import config as config_lib
    from mnist_research.data import sources
    from mnist_research.training.devices import cpu_name

    with tempfile.TemporaryDirectory() as synthetic:
        source = data_dir or write_synthetic(synthetic, 2560, 512)
        data_config = config_lib.DataConfig(data_dir=source)
        data = sources.split(sources.load(data_config), data_config)
        results = {
            "data": data_dir or "synthetic",
            "train_examples": len(data.x_train),
            "epochs": epochs,
            "repeats": repeats,
            "steps_per_loop": steps_per_loop,
            "machine": {
                "processor": cpu_name(),
                "cores": len(os.sched_getaffinity(0)),
                "python": platform.python_version(),
                "tensorflow": tf.__version__,
                "load_average_at_start": os.getloadavg(),
            },
        }
        if "steady" in parts:
            results["steady"] = _steady(data, epochs, repeats, steps_per_loop, log)
            results["floors"] = _floors(data, min(epochs, 3), repeats)
        if "peers" in parts:
            results["peers"] = _peers(source, epochs, repeats, log)
        if "whole" in parts:
            results["whole"] = _whole(source, epochs, repeats, log)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results
