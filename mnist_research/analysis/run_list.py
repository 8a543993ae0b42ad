"""The table of ``python -m mnist_research.runs``: one row per run dir."""

from __future__ import annotations

from typing import Any

from mnist_research.analysis.run_records import Listing, RunRecord, find_runs
from mnist_research.rundir.records import holder

__all__ = ["Listing", "find_runs", "row", "rows", "to_text"]

COLUMNS = (
    "name",
    "experiment",
    "model",
    "dataset",
    "epochs",
    "status",
    "best val acc",
    "test acc",
    "device",
)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def row(record: RunRecord) -> dict[str, Any]:
    """What the table shows of one run, as plain values (the JSON form too)."""
    config, metrics = record.config, record.metrics
    planned = config.get("train", {}).get("epochs")
    trainer = holder(record.path)  # the process training this run now, if any
    if trainer is not None:
        status = f"running ({trainer.split(' on ')[0]})"
    elif record.finished:
        # A search's pruned trial, or a run stopped by --early_stopping_patience.
        early = (
            "pruned" if metrics.get("pruned") else metrics.get("stopped_early") and "stopped early"
        )
        status = f"finished ({early})" if early else "finished"
    else:
        status = "unfinished" if record.epochs_done else "not started"
    test = metrics.get("test_accuracy")
    kind, device = metrics.get("device_kind"), metrics.get("device_name")
    return {
        "name": record.name,
        "path": record.path,
        "experiment": config.get("experiment"),
        "model": config.get("model", {}).get("family"),
        "dataset": config.get("data", {}).get("dataset"),
        "epochs_done": record.epochs_done,
        "epochs_planned": planned,
        "finished": record.finished,
        "status": status,
        "running": trainer,
        "best_val_accuracy": record.best_val_accuracy,
        "test_accuracy": float(test) if isinstance(test, (int, float)) else None,
        "device": f"{str(kind).upper()} ({device})" if kind and device else None,
    }


def rows(records: list[RunRecord]) -> list[dict[str, Any]]:
    return [row(r) for r in records]


def to_text(table: list[dict[str, Any]]) -> str:
    """A fixed-width table with a header line, one line per run."""
    cells = [
        [
            r["name"],
            str(r["experiment"]),
            str(r["model"]),
            str(r["dataset"]),
            f"{r['epochs_done']}/{r['epochs_planned']}",
            r["status"],
            _percent(r["best_val_accuracy"]),
            _percent(r["test_accuracy"]),
            r["device"] or "-",
        ]
        for r in table
    ]
    widths = [max(len(c) for c in column) for column in zip(COLUMNS, *cells)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in (COLUMNS, *cells)
    ]
    return "\n".join(lines)
