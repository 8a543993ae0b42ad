"""Aggregating finished runs into a results table (mean ± std over seeds) and a figure."""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Any

import numpy as np

from mnist_research import files

COLUMNS = ("test_accuracy", "test_loss", "train_seconds")


def aggregate(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per experiment: count, mean, std (ddof=1), min and max of each column,
    and the mean seconds per training epoch (nan when a run does not say its epochs).

    Args:
      runs: experiment name → the ``metrics.json`` dicts of its finished runs.
    """
    rows = []
    for experiment, metrics in runs.items():
        row: dict[str, Any] = {
            "experiment": experiment,
            "runs": len(metrics),
            "seeds": ",".join(str(m.get("seed", "?")) for m in metrics),
        }
        for column in COLUMNS:
            values = np.array([float(m[column]) for m in metrics])
            row[f"{column}_mean"] = float(values.mean())
            row[f"{column}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            row[f"{column}_min"] = float(values.min())
            row[f"{column}_max"] = float(values.max())
        per_epoch = [
            float(m["train_seconds"]) / m["epochs_completed"]
            for m in metrics
            if m.get("epochs_completed")
        ]
        row["epoch_seconds_mean"] = (
            float(np.mean(per_epoch)) if len(per_epoch) == len(metrics) else float("nan")
        )
        rows.append(row)
    _add_differences(rows, runs)
    return rows


def welch_t(a: np.ndarray, b: np.ndarray) -> float:
    """Welch's t statistic of mean(a) - mean(b) (nan with fewer than 2 values each)."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    diff = float(a.mean() - b.mean())
    return diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))


def _add_differences(rows: list[dict[str, Any]], runs: dict[str, list[dict]]) -> None:
    """Test-accuracy difference from the first experiment, with Welch's t.

    With 3 seeds per experiment, |t| above about 2.8 (about 4 degrees of freedom)
    corresponds to p < 0.05 for a two-sided test.
    """
    reference = np.array([float(m["test_accuracy"]) for m in runs[rows[0]["experiment"]]])
    for row in rows:
        values = np.array([float(m["test_accuracy"]) for m in runs[row["experiment"]]])
        row["test_accuracy_diff"] = float(values.mean() - reference.mean())
        row["test_accuracy_welch_t"] = welch_t(values, reference)


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: accuracy in %, loss, and training seconds, mean ± std [min–max],
    and each experiment's accuracy difference from the first one with Welch's t."""
    lines = [
        f"| experiment | runs | test accuracy (%) | Δ vs {rows[0]['experiment']} "
        f"(Welch t) | test loss | training time (s) | s/epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = (
            f"{100 * r['test_accuracy_mean']:.2f} ± {100 * r['test_accuracy_std']:.2f} "
            f"[{100 * r['test_accuracy_min']:.2f}–{100 * r['test_accuracy_max']:.2f}]"
        )
        loss = (
            f"{r['test_loss_mean']:.4f} ± {r['test_loss_std']:.4f} "
            f"[{r['test_loss_min']:.4f}–{r['test_loss_max']:.4f}]"
        )
        seconds = f"{r['train_seconds_mean']:.1f} ± {r['train_seconds_std']:.1f}"
        diff = (
            "–"
            if r is rows[0]
            else f"{100 * r['test_accuracy_diff']:+.2f} ({r['test_accuracy_welch_t']:+.1f})"
        )
        lines.append(
            f"| {r['experiment']} | {r['runs']} | {acc} | {diff} | {loss} "
            f"| {seconds} | {r['epoch_seconds_mean']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], runs: dict[str, list[dict]], path: str) -> str:
    """Per-experiment test accuracy: each seed a dot on its experiment's tick, the mean a
    line across it and ±1 std a band around the mean."""
    from mnist_research.analysis import figures as reports

    plt = reports.plt
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(rows)), 5))
    for i, r in enumerate(rows):
        mean, std = 100 * r["test_accuracy_mean"], 100 * r["test_accuracy_std"]
        ax.fill_between(
            [i - 0.25, i + 0.25],
            mean - std,
            mean + std,
            color="C0",
            alpha=0.2,
            linewidth=0,
            label="± 1 std" if i == 0 else None,
        )
        ax.plot(
            [i - 0.25, i + 0.25],
            [mean, mean],
            color="C0",
            linewidth=2.5,
            label="mean" if i == 0 else None,
        )
        seeds = [100 * float(m["test_accuracy"]) for m in runs[r["experiment"]]]
        ax.scatter(
            i + _tie_offsets(seeds),
            seeds,
            s=30,
            color="0.2",
            zorder=3,
            label="one seed" if i == 0 else None,
        )
    ax.set_xticks(np.arange(len(rows)), [r["experiment"] for r in rows])
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.margins(y=0.15)
    ax.set(ylabel="test accuracy (%)", title="Test accuracy per experiment")
    ax.legend()
    return reports.save_figure(fig, path)


def _tie_offsets(values: list[float], step: float = 0.07) -> np.ndarray:
    """Horizontal offsets that set equal values (to 0.01) side by side, centred on 0."""
    keys = [round(v, 2) for v in values]
    offsets = np.zeros(len(values))
    for key in set(keys):
        where = [i for i, k in enumerate(keys) if k == key]
        offsets[where] = (np.arange(len(where)) - (len(where) - 1) / 2) * step
    return offsets


def _paths(output: str) -> dict[str, str]:
    return {
        "markdown": os.path.join(output, "results.md"),
        "csv": os.path.join(output, "results.csv"),
        "figure": os.path.join(output, "sweep.png"),
    }


def check_outputs(output: str) -> None:
    """Refuses an ``output`` whose ``results.*`` or ``sweep.png`` a sweep did not write.

    Raises:
      FileExistsError: naming the file.
    """
    starts = {".md": b"| experiment |", ".csv": b"experiment,"}
    files.check_outputs(list(_paths(output).values()), [], files.starts_by_kind(starts))


def write(output: str, runs: dict[str, list[dict]]) -> dict[str, str]:
    """Writes ``results.md``, ``results.csv`` and ``sweep.png`` under ``output``."""
    rows = aggregate(runs)
    paths = _paths(output)
    check_outputs(output)
    files.atomic_write_text(paths["markdown"], to_markdown(rows))
    files.atomic_write_text(paths["csv"], to_csv(rows))
    plot(rows, runs, paths["figure"])
    return paths
