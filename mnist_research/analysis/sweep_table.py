"""Aggregating finished runs into a results table (mean ± std over seeds) and a figure.

A spread needs two seeds: with one, the std is nan in ``results.csv`` and the
table says ``n=1`` instead of a ``± 0.00`` it does not know; the difference from
the first experiment then has no test (its t, p and degrees of freedom are nan,
``–`` in the table, with a footnote saying why).
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Any

import numpy as np
from scipy import stats

from mnist_research import files, output_files

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
            row[f"{column}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
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


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Welch's unequal-variances t test of mean(a) - mean(b): (t, two-sided p, degrees of
    freedom), by ``scipy.stats.ttest_ind``; all nan when either side has fewer than 2 values
    or neither varies (no spread to test a difference against: scipy gives a nan p for
    equal values and a p near 0 for a difference of float rounding)."""
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return math.nan, math.nan, math.nan
    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue), float(result.df)


def _add_differences(rows: list[dict[str, Any]], runs: dict[str, list[dict]]) -> None:
    """Test-accuracy difference from the first experiment, with Welch's t, p and df."""
    reference = np.array([float(m["test_accuracy"]) for m in runs[rows[0]["experiment"]]])
    for row in rows:
        values = np.array([float(m["test_accuracy"]) for m in runs[row["experiment"]]])
        row["test_accuracy_diff"] = float(values.mean() - reference.mean())
        t, p, df = welch(values, reference)
        row["test_accuracy_welch_t"] = t
        row["test_accuracy_welch_p"] = p
        row["test_accuracy_welch_df"] = df


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: accuracy in %, loss, and training seconds, mean ± std [min–max]
    (the mean and ``n=1`` for a single seed), and each experiment's accuracy difference
    from the first one with Welch's t, two-sided p and degrees of freedom."""
    first = rows[0]["experiment"]
    lines = [
        f"| experiment | runs | test accuracy (%) | Δ vs {first} (Welch t, p, df) "
        f"| test loss | training time (s) | s/epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = _spread(r, "test_accuracy", 100, "{:.2f}", with_range=True)
        loss = _spread(r, "test_loss", 1, "{:.4f}", with_range=True)
        seconds = _spread(r, "train_seconds", 1, "{:.1f}")
        lines.append(
            f"| {r['experiment']} | {r['runs']} | {acc} | {_difference(r, r is rows[0])} "
            f"| {loss} | {seconds} | {r['epoch_seconds_mean']:.1f} |"
        )
    single = [r["experiment"] for r in rows if r["runs"] < 2]
    if single and len(rows) > 1:
        lines += [
            "",
            f"–: no test where a side has fewer than 2 seeds ({', '.join(single)}: 1 seed, "
            f"whose spread is unknown).",
        ]
    flat = [
        r["experiment"]
        for r in rows[1:]
        if math.isnan(r["test_accuracy_welch_p"]) and min(r["runs"], rows[0]["runs"]) >= 2
    ]
    if flat:
        lines += [
            "",
            f"–: no test where neither side varies across its seeds ({', '.join(flat)} and "
            f"{rows[0]['experiment']}: the same test accuracy from every seed).",
        ]
    return "\n".join(lines) + "\n"


def _spread(row: dict[str, Any], column: str, scale: float, form: str, with_range=False) -> str:
    """``mean ± std [min–max]``, or ``mean (n=1)`` for a single run (its spread unknown)."""
    mean = form.format(scale * row[f"{column}_mean"])
    if row["runs"] < 2:
        return f"{mean} (n=1)"
    text = f"{mean} ± {form.format(scale * row[f'{column}_std'])}"
    if with_range:
        low, high = (form.format(scale * row[f"{column}_{end}"]) for end in ("min", "max"))
        text += f" [{low}–{high}]"
    return text


def _difference(row: dict[str, Any], is_first: bool) -> str:
    """``+0.12 (t=+3.1, p=0.031, df=3.8)`` in accuracy points; ``–`` where there is no test."""
    if is_first:
        return "–"
    diff = f"{100 * row['test_accuracy_diff']:+.2f}"
    if math.isnan(row["test_accuracy_welch_p"]):
        return f"{diff} (–)"
    return (
        f"{diff} (t={row['test_accuracy_welch_t']:+.1f}, p={row['test_accuracy_welch_p']:.2g}, "
        f"df={row['test_accuracy_welch_df']:.1f})"
    )


def plot(rows: list[dict[str, Any]], runs: dict[str, list[dict]], path: str) -> str:
    """Per-experiment test accuracy: each seed a dot on its experiment's tick, the mean a
    line across it and ±1 std a band around the mean."""
    from mnist_research.analysis import figures as reports

    plt = reports.plt
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(rows)), 5))
    for i, r in enumerate(rows):
        mean, std = 100 * r["test_accuracy_mean"], 100 * r["test_accuracy_std"]
        ax.fill_between(  # no band for a single seed (its std is nan)
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
    output_files.check_outputs(
        list(_paths(output).values()), [], output_files.starts_by_kind(starts)
    )


def write(output: str, runs: dict[str, list[dict]]) -> dict[str, str]:
    """Writes ``results.md``, ``results.csv`` and ``sweep.png`` under ``output``."""
    rows = aggregate(runs)
    paths = _paths(output)
    check_outputs(output)
    files.atomic_write_text(paths["markdown"], to_markdown(rows))
    files.atomic_write_text(paths["csv"], to_csv(rows))
    plot(rows, runs, paths["figure"])
    return paths
