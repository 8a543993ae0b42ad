"""Running experiments × seeds, each in its own training process."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Optional

from absl import logging

from mnist_research import logs
from mnist_research.errors import ConfigError, DamagedFileError, MnistResearchError
from mnist_research.rundir import records


def flagfile_path(experiments_dir: str, experiment: str) -> str:
    """``<experiments_dir>/<experiment>.flags``; ConfigError when it does not exist."""
    path = os.path.join(experiments_dir, f"{experiment}.flags")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such experiment flagfile")
    return path


def run_one(flagfile: str, seed: int, run_dir: str, data_dir: Optional[str],
            extra: list[str]) -> dict[str, Any]:
    """Trains (or reuses a finished) run; returns its final metrics with the seed added.

    An interrupted run is resumed: the training command resumes any run dir.
    """
    try:
        metrics = records.finished_metrics(run_dir)
    except DamagedFileError as e:  # the training command below rebuilds it
        logging.warning("%s", e)
        metrics = None
    if metrics is not None:
        logging.info("Reusing finished run %s", run_dir)
        return {**metrics, "seed": seed}
    command = [sys.executable, "-m", "mnist_research.train", f"--flagfile={flagfile}",
               f"--seed={seed}", f"--run_dir={run_dir}"]
    if data_dir:
        command.append(f"--data_dir={data_dir}")
    command += extra
    logging.info("Running %s", " ".join(command))
    # The user's environment, not this process's TF_CPP_MIN_LOG_LEVEL: the run quiets
    # TensorFlow itself from its --verbosity (the sweep passes its own in ``extra``).
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True,
                            env=logs.child_environment())
    if result.returncode != 0:
        raise MnistResearchError(f"{run_dir}: training failed (exit {result.returncode}); "
                                 f"rerun the sweep to resume")
    metrics = records.finished_metrics(run_dir)
    if metrics is None:
        raise MnistResearchError(f"{run_dir}: training exited 0 but left no final metrics.json")
    return {**metrics, "seed": seed}


def run_sweep(experiments: list[str], seeds: list[int], experiments_dir: str, output: str,
              data_dir: Optional[str] = None, extra: Optional[list[str]] = None
              ) -> dict[str, list[dict[str, Any]]]:
    """Every (experiment, seed) run into ``OUTPUT/<experiment>-seed<S>``.

    All flagfiles are checked before the first run starts.

    Returns:
      Experiment → the final metrics of its runs, one per seed.
    """
    flagfiles = {name: flagfile_path(experiments_dir, name) for name in experiments}
    return {name: [run_one(flagfiles[name], seed,
                           os.path.join(output, f"{name}-seed{seed}"), data_dir, extra or [])
                   for seed in seeds]
            for name in experiments}
