"""Side-by-side comparison of finished runs: a table and a figure."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from mnist_research import files
from mnist_research.errors import RunDirError
from mnist_research.inference import finished_run as restore
from mnist_research.rundir import records


@dataclasses.dataclass
class Run:
    path: str
    config: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.path))


def load_run(run_dir: str) -> Run:
    """A finished run's config and metrics (RunDirError when unfinished)."""
    config = restore.load_config(run_dir)
    metrics = records.finished_metrics(run_dir)
    if metrics is None:
        raise RunDirError(f"{run_dir}: not a finished run (no final metrics.json)")
    return Run(run_dir, config.to_dict(), metrics)


def rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One dict per run; ``speedup`` is its training throughput (examples/s) over the first run's.

    Throughput, not s/epoch: runs with different epoch sizes (``--limit_train``,
    another validation split, workers dropping remainders) compare fairly.
    Epoch time and throughput are medians over epochs, so the first epoch's
    tracing and warm-up do not skew short runs.
    """
    out = []
    for run in runs:
        m, c = run.metrics, run.config
        seconds = float(np.median(m["history"]["epoch_seconds"]))
        throughput = float(np.median(m["history"]["examples_per_second"]))
        out.append({
            "run": run.name, "experiment": c["experiment"],
            "device": f"{m.get('device_name', '?')} ({m.get('device_kind', '?')})",
            "strategy": m.get("strategy", "?"), "replicas": m.get("num_replicas", 1),
            "precision": c["distribute"]["mixed_precision"],
            "batch": c["train"]["batch_size"], "epochs": m["epochs_completed"],
            "test_accuracy": m["test_accuracy"], "test_loss": m["test_loss"],
            "epoch_seconds": seconds, "examples_per_second": throughput,
            "tensorflow": m.get("tensorflow_version", "?")})
    base = out[0]["examples_per_second"]
    for row in out:
        row["speedup"] = row["examples_per_second"] / base if base else float("nan")
    return out


def to_markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| run | device | strategy | replicas | precision | batch | epochs | test acc "
             "| test loss | s/epoch (median) | examples/s (median) | throughput vs first |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['run']} | {r['device']} | {r['strategy']} | {r['replicas']} "
                     f"| {r['precision']} | {r['batch']} | {r['epochs']} "
                     f"| {100 * r['test_accuracy']:.2f} % | {r['test_loss']:.4f} "
                     f"| {r['epoch_seconds']:.3f} | {r['examples_per_second']:,.0f} "
                     f"| {r['speedup']:.2f}× |")
    return "\n".join(lines) + "\n"


def plot(runs: list[Run], table: list[dict[str, Any]], path: str) -> str:
    """Validation accuracy and loss per epoch for every run, and a throughput bar chart."""
    from mnist_research.analysis import figures as reports  # noqa: PLC0415 (matplotlib only when plotting
    plt = reports.plt
    fig, (ax_acc, ax_loss, ax_speed) = plt.subplots(1, 3, figsize=(18, 5))
    for run in runs:
        history = run.metrics["history"]
        epochs = np.arange(1, len(history["val_accuracy"]) + 1)
        ax_acc.plot(epochs, history["val_accuracy"], "o-", label=run.name)
        ax_loss.plot(epochs, history["val_loss"], "o-", label=run.name)
    ax_acc.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0.0, 1.0))
    ax_loss.set(title="Validation loss", xlabel="epoch", ylabel="cross-entropy")
    names = [r["run"] for r in table]
    bars = ax_speed.bar(np.arange(len(table)), [r["examples_per_second"] for r in table])
    for bar, r in zip(bars, table):
        ax_speed.annotate(f"{r['examples_per_second']:,.0f}/s ({r['speedup']:.2f}×)",
                          (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom")
    ax_speed.set_xticks(np.arange(len(table)), names, rotation=15, ha="right")
    ax_speed.margins(y=0.12)  # room for the labels above the bars
    ax_speed.set(title="Training throughput (median over epochs)",
                 ylabel="training examples / second",
                 xlabel=f"(×: throughput relative to {names[0]})")
    for ax in (ax_acc, ax_loss):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return reports.save_figure(fig, path)


def write(output: str, runs: list[Run], table: list[dict[str, Any]]) -> dict[str, str]:
    paths = {"markdown": os.path.join(output, "compare.md"),
             "figure": os.path.join(output, "compare.png")}
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"{output}: cannot create ({e.strerror or e})") from None
    files.atomic_write_text(paths["markdown"], to_markdown(table))
    plot(runs, table, paths["figure"])
    return paths
