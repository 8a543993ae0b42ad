"""``train_and_evaluate``: one run from data to checkpoints, metrics, export and reports.

The ``train`` command turns flags into an :class:`ExperimentConfig` and calls
:func:`train_and_evaluate`; tests and notebooks call it directly, and may
inject tiny data (``datasets=``) or a 2-replica strategy (``strategy=``).
The phases live in their own modules: the run dir (``run_dir``), the
checkpointed state (``checkpoints``), the epoch loop (``epoch_loop``) and the
end of the run (``finish``).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import tensorflow as tf
from absl import logging

from mnist_research.config import ExperimentConfig
from mnist_research.data import pipeline, sources
from mnist_research.training import devices, epoch_loop, finish
from mnist_research.training import run_dir as run_dir_lib
from mnist_research.training import summaries as summaries_lib
from mnist_research.training.checkpoints import CHECKPOINT_DIR, CheckpointState
from mnist_research.training.run_context import RunContext
from mnist_research.training.trainer import Trainer


def set_seeds(config: ExperimentConfig) -> None:
    """Seeds Python, NumPy and TF; optionally turns on op determinism."""
    tf.keras.utils.set_random_seed(config.train.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()


def train_and_evaluate(config: ExperimentConfig, run_dir: Optional[str] = None, *,
                       datasets: Optional[sources.Splits] = None,
                       strategy: Optional[tf.distribute.Strategy] = None,
                       flagfile_text: str = "", verbose: bool = True) -> dict[str, Any]:
    """Trains (or resumes), evaluates and writes everything a run produces.

    Args:
      config: the experiment.
      run_dir: where outputs go; ``None`` picks ``runs/<experiment>-<device>-<time>``.
      datasets: pre-split uint8 data; ``None`` loads what ``config.data`` names.
      strategy: a strategy to use; ``None`` builds one from ``config.distribute``
        (devices must not be initialised yet if that needs logical CPUs).
      flagfile_text: the flagfile saved as ``flags.txt``.
      verbose: show a progress bar.

    Returns:
      The metrics dict also written to ``metrics.json``.

    Raises:
      MnistResearchError subclasses for bad data, settings or run dirs, and
      NonFiniteLossError when the loss diverges.
    """
    if strategy is None:
        devices.configure_devices(config.distribute)
        strategy = devices.create_strategy(config.distribute)
    set_seeds(config)
    datasets = _load_data(config, datasets)
    info = devices.device_info(strategy)
    run_dir = run_dir or run_dir_lib.default_run_dir(config.experiment, devices.device_tag(info))
    chief = devices.is_chief()
    run_dir_lib.prepare(run_dir, config)
    finished = run_dir_lib.finished_metrics(run_dir)
    if finished is not None and (finished["epochs_completed"] >= config.train.epochs or
                                 finished.get("stopped_early")):
        logging.info("%s is complete (%d epochs); nothing to do. Use a new --run_dir or "
                     "--overwrite to train again.", run_dir, finished["epochs_completed"])
        return finished
    if chief:
        for path in run_dir_lib.remove_stale_temporaries(run_dir):
            logging.info("Removed %s, left half-written by an interrupted run", path)
        run_dir_lib.save_config(run_dir, config, flagfile_text)
    logging.info("Run dir: %s | %s x%d, %s (%s)", run_dir, info["strategy"],
                 info["num_replicas"], info["device_name"], info["device_kind"])

    train_input = pipeline.TrainInput(datasets.x_train, datasets.y_train,
                                      config.train.batch_size, config.train.seed,
                                      augment=config.train.augment)
    workers = devices.num_workers() if isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy) else 1
    steps_per_epoch = train_input.steps_per_epoch(workers)
    run = _start_run(config, run_dir, strategy, steps_per_epoch, datasets, info, chief,
                     flagfile_text)
    epoch_loop.run_epochs(run, train_input, steps_per_epoch, verbose)
    return finish.finish_run(run)


def _load_data(config: ExperimentConfig, datasets: Optional[sources.Splits]) -> sources.Splits:
    """The given splits, or the data ``config.data`` names, split; logs their description."""
    source = "data given in memory"
    if datasets is None:
        raw = sources.load(config.data)
        datasets, source = sources.split(raw, config.data), raw.source
    sources.log_description(datasets, source)
    return datasets


def _start_run(config: ExperimentConfig, run_dir: str, strategy: tf.distribute.Strategy,
               steps_per_epoch: int, datasets: sources.Splits, info: dict, chief: bool,
               flagfile_text: str) -> RunContext:
    """Builds the trainer, restores the latest checkpoint and opens the summary writers."""
    trainer = Trainer(config, strategy, steps_per_epoch)
    state = CheckpointState(trainer, os.path.join(run_dir, CHECKPOINT_DIR), chief,
                            config.train.max_to_keep)
    history = state.restore()
    if chief:
        dropped = summaries_lib.prune_after(run_dir, int(trainer.epoch.numpy()), trainer.step)
        if dropped:
            logging.info("Dropped %d TensorBoard events written after the last checkpoint",
                         dropped)
    summaries = summaries_lib.Summaries(run_dir if chief else None)
    if not history["loss"]:
        summaries.text("config/flags", "```\n" + (flagfile_text or "(none)") + "\n```")
        summaries.hparams(summaries_lib.hparams_of(config, info))
    return RunContext(config=config, run_dir=run_dir, chief=chief, info=info,
                      datasets=datasets, trainer=trainer, state=state, summaries=summaries,
                      history=history, flagfile_text=flagfile_text)
