"""The end-of-run actions of the ``train`` command: the exported model, then the reports.

Its callers (the ``train`` command, the notebook, the tests) pass them to
``runner.train_and_evaluate(..., actions=end_of_run_actions())``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from mnist_research.data import pipeline
from mnist_research.inference import export as export_lib
from mnist_research.training import devices
from mnist_research.training.history import Totals
from mnist_research.training.runner import EndOfRunAction, RunContext


def export_model(run: RunContext, metrics: dict[str, Any], test: Totals) -> None:
    """``export/`` (SavedModel) and ``model.keras``; every worker takes part (a collective
    save), non-chief ones into a temp dir. Records ``export_sha256`` (the export's
    variables) in ``metrics``, so a later ``export/`` holding other weights is refused.
    """
    del test  # the export needs only the trained model
    model = run.trainer.model
    if not run.chief:
        temp = os.path.join(run.run_dir, f".export-{devices.worker_id()}-tmp")
        export_lib.export_saved_model(model, temp)
        shutil.rmtree(temp, ignore_errors=True)
        return
    export_dir = os.path.join(run.run_dir, export_lib.EXPORT_DIR)
    export_lib.export_saved_model(model, export_dir)
    export_lib.save_keras(model, os.path.join(run.run_dir, export_lib.KERAS_FILE))
    metrics["export_sha256"] = export_lib.weights_sha256(export_dir)


def export_problem(run_dir: str) -> str | None:
    """:func:`mnist_research.inference.finished_run.export_problem`, loaded when first called:
    only a rerun on a finished run reads the export back."""
    from mnist_research.inference import finished_run

    return finished_run.export_problem(run_dir)


def write_reports(run: RunContext, metrics: dict[str, Any], test: Totals) -> None:
    """Figures and report.html; per-class scores into ``metrics``; TensorBoard images and
    test scalars (the chief only)."""
    # Matplotlib, Seaborn and SciPy load here, not at start-up: only the reports need them.
    from mnist_research.analysis import figures
    from mnist_research.analysis import metrics as evaluation

    datasets, epochs = run.datasets, run.config.train.epochs
    logits = pipeline.logits_function(run.trainer.model)(datasets.x_test)
    summary = evaluation.summarize(datasets.y_test, logits, run.config.model.num_classes)
    metrics.update(per_class=summary["per_class"], confusion_matrix=summary["confusion_matrix"])
    paths = figures.write_reports(
        os.path.join(run.run_dir, "reports"),
        run.config.to_dict(),
        metrics,
        datasets.x_test,
        datasets.y_test,
        logits,
        summary,
    )
    images = {name: paths[name] for name in ("samples", "confusion_matrix", "mistakes")}
    run.summaries.end_of_run(epochs, images, test.means())


EXPORT = EndOfRunAction("exporting", export_model, every_worker=True, problem=export_problem)
REPORTS = EndOfRunAction("writing the reports", write_reports)


def end_of_run_actions() -> tuple[EndOfRunAction, ...]:
    """The export, then the reports: what the ``train`` command writes at the end of a run."""
    return (EXPORT, REPORTS)
