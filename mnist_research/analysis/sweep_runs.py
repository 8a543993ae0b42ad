"""One run of a sweep, (experiment, seed), in its own training process.

Which process of a sweep runs which: ``studies.grid``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

from absl import app, flags, logging

from mnist_research import flagfiles, interrupts
from mnist_research.config import ExperimentConfig
from mnist_research.config.saved import config_from_arguments, differences
from mnist_research.errors import ConfigError, MnistResearchError
from mnist_research.rundir import records


def flagfile_path(experiments_dir: str, experiment: str) -> str:
    """``<experiments_dir>/<experiment>.flags``; ConfigError when it does not exist."""
    path = os.path.join(experiments_dir, f"{experiment}.flags")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such experiment flagfile")
    return path


# The training flags the sweep sets for each run (what its table labels the run with),
# and where the run goes: a flag after -- may not set them.
OWNED_FLAGS = {
    "seed": "--seeds",
    "experiment": "--experiments",
    "run_dir": "--output",
    "logdir": "--output",
    "resume": "--output",
    "data_dir": "the sweep's own --data_dir",
}
_FLAG_NAME = re.compile(r"^--?([A-Za-z_][\w.-]*)")


def check_extra(extra: list[str]) -> None:
    """Refuses flags for every run that set what the sweep sets per run (also from a flagfile).

    Raises:
      ConfigError: naming the flag and the sweep's own way to set it.
    """
    try:
        expanded = flagfiles.expand(["train", *extra])[1:]
    except flags.Error as e:
        raise ConfigError(f"the flags after --: {e}") from None
    for arg in expanded:
        match = _FLAG_NAME.match(arg)
        name = match.group(1) if match else ""
        owned = name if name in OWNED_FLAGS else name[2:] if name.startswith("no") else ""
        if owned in OWNED_FLAGS:
            raise ConfigError(
                f"{arg} after --: the sweep sets --{owned} for each run (use "
                f"{OWNED_FLAGS[owned]}); nothing was run"
            )


class SweepStopped(interrupts.Interrupted):
    """The sweep received SIGINT/SIGTERM; its running child was stopped the same way.

    Attributes:
      run_dir: the run being trained; its last checkpoint is kept, so rerunning
        the sweep resumes it.
      child_status: the child's exit status once stopped.
    """

    def __init__(self, signum: int, run_dir: str, child_status: int | None):
        super().__init__(signum)
        self.run_dir, self.child_status = run_dir, child_status


def _stop_child(process: subprocess.Popen, signum: int) -> None:
    """Passes the signal on and waits for the child to save and exit (SIGKILL after 120 s)."""
    if process.poll() is None:
        process.send_signal(signum)
    for _ in range(3):  # a further signal to the sweep must not orphan the child
        try:
            process.wait(timeout=120)
            return
        except subprocess.TimeoutExpired:
            process.kill()
        except interrupts.Interrupted:
            continue
    process.kill()
    process.wait()


def finished_run(
    flagfile: str, seed: int, run_dir: str, data_dir: str | None, extra: list[str]
) -> dict[str, Any] | None:
    """The final metrics, seed added, of the run ``run_dir`` finished with this sweep's settings.

    ``None`` when it holds no finished run (nothing, an interrupted or a damaged
    one), or one that only needs more epochs: the training command resumes,
    extends or rebuilds each.

    Raises:
      MnistResearchError: it finished with other settings, each difference named.
    """
    try:
        metrics = records.finished_metrics(run_dir)
    except records.DamagedFileError as e:  # the training command rebuilds it
        logging.warning("%s", e)
        return None
    if metrics is None:
        return None
    diffs = _setting_differences(run_dir, _command_config(flagfile, seed, data_dir, extra))
    if not diffs:
        return {**metrics, "seed": seed}
    if any(not d.startswith("train.epochs:") for d in diffs):
        raise MnistResearchError(
            f"{run_dir} finished with other settings "
            f"({'; '.join(diffs)}); its results are not this sweep's. "
            f"Use another --output, or delete that run"
        )
    return None  # only --epochs differs: the training command extends the run (or refuses fewer)


def run_one(
    flagfile: str, seed: int, run_dir: str, data_dir: str | None, extra: list[str]
) -> dict[str, Any]:
    """Trains (or reuses a finished) run; returns its final metrics with the seed added.

    An interrupted run is resumed: the training command resumes any run dir.
    """
    metrics = finished_run(flagfile, seed, run_dir, data_dir, extra)
    if metrics is not None:
        logging.info("Reusing finished run %s (same settings)", run_dir)
        return metrics
    command = [
        sys.executable,
        "-m",
        "mnist_research.train",
        f"--flagfile={flagfile}",
        f"--seed={seed}",
        f"--run_dir={run_dir}",
    ]
    if data_dir:
        command.append(f"--data_dir={data_dir}")
    command += extra
    logging.info("Running %s", " ".join(command))
    # The run quiets TensorFlow itself from its --verbosity (the sweep passes its own in
    # ``extra``).
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        process.communicate()
    except interrupts.Interrupted as e:
        _stop_child(process, e.signum)
        raise SweepStopped(e.signum, run_dir, process.returncode) from None
    result = process
    if result.returncode != 0:
        raise MnistResearchError(
            f"{run_dir}: training failed (exit {result.returncode}); rerun the sweep to resume"
        )
    metrics = records.finished_metrics(run_dir)
    if metrics is None:
        raise MnistResearchError(f"{run_dir}: training exited 0 but left no final metrics.json")
    return {**metrics, "seed": seed}


def _command_config(
    flagfile: str, seed: int, data_dir: str | None, extra: list[str]
) -> ExperimentConfig:
    """The settings the training command of one run would resolve (its flags parsed here)."""
    arguments = [f"--flagfile={flagfile}", f"--seed={seed}"]
    arguments += [f"--data_dir={data_dir}"] if data_dir else []
    try:
        return config_from_arguments(arguments + list(extra), known_only=True)
    except (flags.Error, app.UsageError) as e:
        raise ConfigError(f"the flags of {flagfile} with {' '.join(extra)}: {e}") from None


def _setting_differences(run_dir: str, wanted: ExperimentConfig) -> list[str]:
    """``section.setting: old -> new`` between a finished run's config.json and ``wanted``."""
    saved = records.load_config(run_dir)
    if saved is None:
        return ["config.json: missing"]
    old, new = saved.to_dict(), wanted.to_dict()
    for document in (old, new):  # config.json stores data_dir absolute
        if document["data"].get("data_dir"):
            document["data"]["data_dir"] = os.path.abspath(document["data"]["data_dir"])
    return differences(old, new)
