"""``train_and_evaluate``: one run from data to checkpoints, metrics and end-of-run outputs.

The ``train`` command, the studies, tests and notebooks call it (tests may
inject tiny data or a 2-replica strategy). A run dir that already holds
something (to resume, finish again or ``--overwrite``) is checked, restored and
tidied by ``existing_run``, which a run into a new or empty folder never imports.
The exported model, the figures and ``report.html`` are written by
:class:`EndOfRunAction` objects that the caller passes in (the standard ones:
``mnist_research.run_outputs``), so that ``training/`` imports nothing from
``inference/`` or ``analysis/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf
from absl import logging

from mnist_research import files, interrupts
from mnist_research.config import ExperimentConfig
from mnist_research.data import pipeline, sources
from mnist_research.model import registry
from mnist_research.rundir import layout
from mnist_research.rundir.lock import RunDirLock
from mnist_research.training import devices, hooks, loop
from mnist_research.training import history as history_lib
from mnist_research.training import summaries as summaries_lib
from mnist_research.training.checkpoint_state import CheckpointState
from mnist_research.training.history import History, Totals


@dataclasses.dataclass(frozen=True)
class RunContext:
    """One run, as its hooks and end-of-run actions see it (``chief``: this worker writes
    the run dir, always true on one machine; ``info``: ``devices.device_info``)."""

    config: ExperimentConfig
    run_dir: str
    chief: bool
    info: dict[str, Any]
    datasets: sources.Splits
    trainer: loop.Trainer
    state: CheckpointState
    summaries: summaries_lib.Summaries
    history: History


@dataclasses.dataclass(frozen=True)
class EndOfRunAction:
    """Something a run writes at its end, after the test evaluation.

    Attributes:
      name: what it does, as a gerund for log lines (``"exporting"``).
      write: ``write(run, metrics, test)`` writes its outputs into ``run.run_dir``
        and may add fields to ``metrics`` (the final ``metrics.json``).
      every_worker: called on every worker, not only the chief (each must take
        part in a collective save, such as a SavedModel export under
        ``MultiWorkerMirroredStrategy``).
      problem: ``problem(run_dir)``: why the outputs a finished run holds
        cannot be used (one line), or ``None``; such a run is finished again
        from its checkpoint when the train command is rerun.
    """

    name: str
    write: Callable[[RunContext, dict[str, Any], Totals], None]
    every_worker: bool = False
    problem: Callable[[str], str | None] | None = None


def train_and_evaluate(
    config: ExperimentConfig,
    run_dir: str,
    *,
    datasets: sources.Splits | None = None,
    strategy: tf.distribute.Strategy | None = None,
    flagfile_text: str = "",
    verbose: bool = True,
    overwrite: bool = False,
    resume_hint: str = "",
    actions: Sequence[EndOfRunAction] = (),
    hooks_with: Callable[[list[loop.Hook]], Sequence[loop.Hook]] | None = None,
) -> dict[str, Any]:
    """Trains (or resumes), evaluates and writes everything a run produces; returns the
    metrics also written to ``metrics.json``.

    Everything that can refuse the settings (the run dir's own settings and
    epochs, the data, the batch size, the model's size) is checked before
    anything is written; the chief then holds the run dir's lock until the end.

    Args:
      datasets: pre-split uint8 data; ``None`` loads what ``config.data`` names.
      strategy: ``None`` builds one from ``config.distribute`` (devices must not
        be initialised yet if that needs logical CPUs).
      flagfile_text: saved as ``flags.txt``.
      verbose: show a progress bar.
      overwrite: delete the run dir's contents first (only a run dir of this
        project, or an empty directory, is ever deleted).
      resume_hint: the command that resumes this run, logged once the run has
        started (after every check that could refuse it).
      actions: the end-of-run actions, in order (``run_outputs.end_of_run_actions()``:
        the export, the reports).
      hooks_with: ``hooks_with(standard)``: the hooks the epoch loop calls,
        given :func:`standard_hooks` (to add a hook, or wrap them).
    """
    if strategy is None:
        devices.configure_devices(config.distribute)
        strategy = devices.create_strategy(config.distribute)
    train = config.train
    tf.keras.utils.set_random_seed(train.seed)  # Python, NumPy and TF
    if train.deterministic:
        tf.config.experimental.enable_op_determinism()
    info = devices.device_info(strategy)
    workers = devices.num_workers()
    if workers > 1:  # a TF_CONFIG cluster: only MultiWorkerMirroredStrategy trains it
        from mnist_research.training import strategies

        strategies.check_cluster(strategy, workers)
    chief = devices.is_chief()
    layout.check_path(run_dir)
    resuming = not layout.is_empty(run_dir)  # a run to resume or finish, or --overwrite's
    damaged_config = None
    if resuming:
        from mnist_research.training import existing_run

        finished, damaged_config = existing_run.check(run_dir, config, overwrite, actions)
        if finished is not None:
            return finished
    datasets = _load_data(config, datasets)
    info = {**info, "data_sha256": sources.fingerprint(datasets)}
    if resuming and not overwrite:
        existing_run.check_same_run(run_dir, info)
    train_input = pipeline.TrainInput(
        datasets.x_train, datasets.y_train, train.batch_size, train.seed, augment=train.augment
    )
    steps_per_epoch = train_input.steps_per_epoch(workers)  # the same on every worker
    trainer = devices.build_trainer(
        config, strategy, steps_per_epoch, on_gpu=info["device_kind"] == "gpu"
    )

    layout.ensure_writable(run_dir)
    if chief:
        layout.claim(run_dir)
    with RunDirLock(run_dir) if chief else contextlib.nullcontext():
        checkpoints = os.path.join(run_dir, layout.CHECKPOINT_DIR)
        state = CheckpointState(trainer, checkpoints, chief, train.max_to_keep, info["data_sha256"])
        history = history_lib.from_json("{}")
        if resuming:
            history = existing_run.resume(run_dir, trainer, state, chief, overwrite, damaged_config)
        if chief:
            layout.save_config(run_dir, config, flagfile_text)
        summaries = summaries_lib.Summaries(run_dir if chief else None)
        if not history["loss"]:  # a new run: its flags and HParams first
            summaries.start(config, info, flagfile_text)
        run = RunContext(config, run_dir, chief, info, datasets, trainer, state, summaries, history)
        where = "{strategy} x{num_replicas}, {device_name} ({device_kind})".format(**info)
        logging.info("Run dir: %s | %s", run_dir, where)
        if resume_hint and chief:
            logging.info("To resume this run if it stops: %s", resume_hint)
        epoch_hooks = standard_hooks(run, steps_per_epoch, verbose)
        if hooks_with is not None:
            epoch_hooks = hooks_with(epoch_hooks)
        validate = trainer.make_evaluator(
            pipeline.eval_dataset(datasets.x_val, datasets.y_val, train.eval_batch_size)
        )

        def make_batches(first_epoch: int):
            return train_input.distributed(strategy, first_epoch, train.epochs, steps_per_epoch)

        with devices.out_of_memory_as_error(config), interrupts.deferred():
            loop.run_epochs(
                trainer, make_batches, validate, run.history, steps_per_epoch, epoch_hooks
            )
        return finish_run(run, actions)


def _load_data(config: ExperimentConfig, datasets: sources.Splits | None) -> sources.Splits:
    """The given splits, or the data ``config.data`` names, split; logs their description."""
    source = "data given in memory"
    if datasets is None:
        raw = sources.load(config.data)
        datasets, source = sources.split(raw, config.data), raw.source
    sources.log_description(datasets, source)
    return datasets


def standard_hooks(run: RunContext, steps_per_epoch: int, verbose: bool) -> list[loop.Hook]:
    """What a ``train`` run does around its steps and epochs, in order.

    The profiler (``--profile_steps``, the chief only), TensorBoard, the progress bar (``verbose``,
    the chief only; last among the step hooks, so no other hook's log line lands
    on the bar), then the best epoch and early stopping, then the checkpoint and
    ``metrics.json``. The last two are the run's progress: the best epoch's
    weights (tested and exported with ``restore_best``) and each epoch's
    checkpoint come from them, so a caller keeps them, in this order.
    """
    config, trainer = run.config, run.trainer
    x_train, y_train = run.datasets.x_train, run.datasets.y_train
    gradient_batch = (x_train[: hooks.GRADIENT_BATCH], y_train[: hooks.GRADIENT_BATCH])
    epoch_hooks: list[loop.Hook] = []
    if run.chief and config.train.profile_steps:
        from mnist_research.training.profiler import Profiler  # only this flag needs it

        logdir = os.path.join(run.run_dir, "train")
        epoch_hooks.append(Profiler(config.train.profile_steps, logdir))
    epoch_hooks.append(hooks.TensorBoard(run.summaries, trainer, gradient_batch))
    if verbose and run.chief:
        epoch_hooks.append(hooks.ProgressBar(steps_per_epoch))
    epoch_hooks += [
        hooks.BestEpoch(run.state.best, config.train.early_stopping_patience),
        hooks.Checkpoint(run.state, run.run_dir, run.info, run.chief),
    ]
    return epoch_hooks


def finish_run(run: RunContext, actions: Sequence[EndOfRunAction] = ()) -> dict[str, Any]:
    """Evaluates the test split, runs the ``actions`` in order, returns the final metrics.

    With ``restore_best`` the best validation epoch's weights replace the last
    epoch's before the test evaluation and the actions (the export); either
    way they are written to ``checkpoints/best/``. ``metrics.json`` is written
    last, with ``finished: true``, so a run killed before that point finishes
    again when it is resumed.
    """
    config, trainer, datasets = run.config, run.trainer, run.datasets
    selection = history_lib.selection(
        run.history["val_accuracy"],
        config.train.early_stopping_patience,
        config.train.epochs,
        config.train.restore_best,
    )
    run.state.save_best(selection["best_epoch"])
    if config.train.restore_best:
        run.state.best.restore_into_model()
        logging.info(
            "Testing and exporting epoch %d (best validation accuracy %.4f)",
            selection["best_epoch"],
            selection["best_val_accuracy"],
        )
    test = trainer.make_evaluator(
        pipeline.eval_dataset(datasets.x_test, datasets.y_test, config.train.eval_batch_size)
    )()
    metrics = history_lib.run_metrics(run.history, run.info, test, finished=True)
    metrics.update(selection)
    metrics["weights_sha256"] = registry.weights_fingerprint(trainer.model)
    logging.debug(
        "Final weights sha256 %s (worker %s)", metrics["weights_sha256"], devices.worker_id()
    )
    for action in actions:
        if action.every_worker or run.chief:
            action.write(run, metrics, test)
    if run.chief:
        files.write_json(os.path.join(run.run_dir, layout.METRICS_FILE), metrics)
    run.summaries.close()
    return metrics
