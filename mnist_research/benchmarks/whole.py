"""Whole commands, process start to exit, each in its own process.

- ``notebook_script``: the original notebook's script (``notebook_recipe`` as a command).
- ``train``: ``python -m mnist_research.train --flagfile=experiments/baseline.flags``
  exactly as a user runs it (fresh run dir).
- ``train_phases``: the same command with timers around its phases
  (``benchmarks.phases``): where its time goes.
- ``peer``: one of the 15-epoch runs of :mod:`mnist_research.benchmarks.peers`.

Wall seconds are measured here, around the child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASELINE = os.path.join(REPO, "experiments", "baseline.flags")


class CommandFailed(RuntimeError):
    """A benchmarked command exited with an error."""


def _run(args: list[str], env_extra: dict | None = None) -> float:
    """Runs ``python args`` from the repository root; returns its wall seconds."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env_extra or {})}
    start = time.time()
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    seconds = time.time() - start
    if result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(args[:3])} exited with {result.returncode}: "
            f"{result.stderr.strip().splitlines()[-1:] or ''}"
        )
    return seconds


def notebook_script(data_dir: str, epochs: int) -> dict:
    """The notebook script's wall seconds and what it wrote (per-epoch seconds, test accuracy)."""
    with tempfile.TemporaryDirectory() as out:
        seconds = _run(
            ["-m", "mnist_research.benchmarks.notebook_recipe", data_dir, out, str(epochs)]
        )
        with open(os.path.join(out, "notebook_recipe.json")) as f:
            result = json.load(f)
    return {
        "whole_seconds": seconds,
        "epoch_seconds": result["epoch_seconds"],
        "test_accuracy": result["test_accuracy"],
    }


def _train_flags(data_dir: str, run_dir: str, epochs: int) -> list[str]:
    return [
        f"--flagfile={BASELINE}",
        f"--data_dir={data_dir}",
        f"--run_dir={run_dir}",
        f"--epochs={epochs}",
    ]


def train(data_dir: str, epochs: int) -> dict:
    """The baseline train command's wall seconds, test accuracy and epoch seconds."""
    with tempfile.TemporaryDirectory() as parent:
        run_dir = os.path.join(parent, "run")
        seconds = _run(["-m", "mnist_research.train", *_train_flags(data_dir, run_dir, epochs)])
        with open(os.path.join(run_dir, "metrics.json")) as f:
            metrics = json.load(f)
    return {
        "whole_seconds": seconds,
        "test_accuracy": metrics["test_accuracy"],
        "epoch_seconds": metrics["history"]["epoch_seconds"],
    }


def train_phases(data_dir: str, epochs: int) -> dict:
    """The baseline train command with its phases timed (``benchmarks.phases``)."""
    with tempfile.TemporaryDirectory() as parent:
        output = os.path.join(parent, "phases.json")
        seconds = _run(
            [
                "-m",
                "mnist_research.benchmarks.phases",
                output,
                *_train_flags(data_dir, os.path.join(parent, "run"), epochs),
            ],
            {"MNIST_BENCHMARK_T0": repr(time.time())},
        )
        with open(output) as f:
            phases = json.load(f)
    phases["whole_seconds_outside"] = seconds
    return phases


def peer(runner: str, data_dir: str, epochs: int) -> dict:
    """One 15-epoch run of ``benchmarks.peers`` (or why it was skipped)."""
    with tempfile.TemporaryDirectory() as parent:
        output = os.path.join(parent, f"{runner}.json")
        _run(["-m", "mnist_research.benchmarks.peers", runner, data_dir, str(epochs), output])
        with open(output) as f:
            return json.load(f)
