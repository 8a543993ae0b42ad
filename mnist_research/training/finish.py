"""The end of a run: test evaluation, the end-of-run actions and the final ``metrics.json``.

The exported model, the figures and ``report.html`` are written by
:class:`EndOfRunAction` objects that the caller of ``train_and_evaluate``
passes in (the standard ones: ``mnist_research.run_outputs``), so that
``training/`` imports nothing from ``inference/`` or ``analysis/``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

from absl import logging

from mnist_research import files
from mnist_research.config import ExperimentConfig
from mnist_research.data import pipeline
from mnist_research.data.sources import Splits
from mnist_research.model import registry
from mnist_research.rundir import layout
from mnist_research.training import devices
from mnist_research.training import history as history_lib
from mnist_research.training.checkpoint_state import CheckpointState
from mnist_research.training.history import History, Totals
from mnist_research.training.loop import Trainer
from mnist_research.training.summaries import Summaries


@dataclasses.dataclass(frozen=True)
class RunContext:
    """One run, as its hooks and end-of-run actions see it (``chief``: this worker writes
    the run dir, always true on one machine; ``info``: ``devices.device_info``)."""

    config: ExperimentConfig
    run_dir: str
    chief: bool
    info: dict[str, Any]
    datasets: Splits
    trainer: Trainer
    state: CheckpointState
    summaries: Summaries
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
