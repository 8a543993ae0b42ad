"""The end of a run: test evaluation, export, reports and the final ``metrics.json``."""

from __future__ import annotations

import os
import shutil
from typing import Any

import tensorflow as tf
from absl import logging

from mnist_research import files
from mnist_research.analysis import metrics as metrics_lib
from mnist_research.data import pipeline
from mnist_research.inference import export as export_lib
from mnist_research.model import mlp as model_lib
from mnist_research.rundir import layout
from mnist_research.training import best_epoch, devices
from mnist_research.training import history as history_lib
from mnist_research.training.run_context import RunContext


def finish_run(run: RunContext) -> dict[str, Any]:
    """Evaluates the test split, exports the model, writes reports and ``metrics.json``.

    With ``restore_best`` the best validation epoch's weights replace the last
    epoch's before the test evaluation and export. Either way the best epoch's
    weights are written to ``checkpoints/best/`` and ``metrics.json`` records
    which epoch was best and which was exported. Every worker evaluates and
    takes part in the export; only the chief writes the run dir.
    ``metrics.json`` is written last, with ``finished: true``, so a run killed
    before that point finishes again when it is resumed.

    Returns:
      The final metrics.
    """
    config, trainer, datasets = run.config, run.trainer, run.datasets
    selection = best_epoch.summary(run.history["val_accuracy"],
                                   config.train.early_stopping_patience, config.train.epochs,
                                   config.train.restore_best)
    run.state.save_best(selection["best_epoch"])
    if config.train.restore_best:
        run.state.best.restore_into_model()
        logging.info("Testing and exporting epoch %d (best validation accuracy %.4f)",
                     selection["best_epoch"], selection["best_val_accuracy"])
    test = trainer.make_evaluator(pipeline.eval_dataset(
        datasets.x_test, datasets.y_test, config.train.eval_batch_size))()
    metrics = history_lib.run_metrics(run.history, run.info, test, finished=True)
    metrics.update(selection)
    metrics["weights_sha256"] = model_lib.weights_fingerprint(trainer.model)
    logging.info("Final weights sha256 %s (worker %s)", metrics["weights_sha256"],
                 devices.worker_id())
    export(trainer.model, run.run_dir, run.chief)
    if run.chief:
        _write_reports(run, metrics, test)
        files.write_json(os.path.join(run.run_dir, layout.METRICS_FILE), metrics)
    run.summaries.close()
    logging.info("Test accuracy %.4f, test loss %.4f (%d examples)", test.accuracy, test.loss,
                 int(test.count))
    return metrics


def _write_reports(run: RunContext, metrics: dict[str, Any], test) -> None:
    """Figures and report.html; per-class scores into ``metrics``; images and test scalars."""
    # Matplotlib and Seaborn load here, not at start-up: only the reports need them.
    from mnist_research.analysis import figures  # noqa: PLC0415

    datasets, config = run.datasets, run.config
    logits = run.trainer.predict_logits(datasets.x_test)
    test_summary = metrics_lib.summarize(datasets.y_test, logits, config.model.num_classes)
    metrics.update(per_class=test_summary["per_class"],
                   confusion_matrix=test_summary["confusion_matrix"])
    paths = figures.write_reports(os.path.join(run.run_dir, "reports"), run.history,
                                  datasets.x_test, datasets.y_test,
                                  metrics_lib.softmax(logits), test_summary,
                                  config.to_dict(), metrics)
    run.summaries.png_images(config.train.epochs, {
        name: paths[name] for name in ("samples", "confusion_matrix", "mistakes")})
    run.summaries.final_scalars(config.train.epochs, {"accuracy": test.accuracy,
                                                      "loss": test.loss})


def export(model: tf.keras.Model, run_dir: str, chief: bool) -> None:
    """SavedModel (every worker takes part; non-chief ones into a temp dir) and .keras."""
    if chief:
        export_lib.export_saved_model(model, os.path.join(run_dir, export_lib.EXPORT_DIR))
        export_lib.save_keras(model, os.path.join(run_dir, export_lib.KERAS_FILE))
    else:
        temp = os.path.join(run_dir, f".export-{devices.worker_id()}-tmp")
        export_lib.export_saved_model(model, temp)
        shutil.rmtree(temp, ignore_errors=True)
