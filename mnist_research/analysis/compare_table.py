"""Side-by-side comparison of finished runs: a table (markdown and JSON) and a figure.

Made for "the same recipe on a GPU and on a CPU" as much as for "an MLP against a
CNN": each row names the run's model family, the settings in which the runs'
configurations differ (found from each ``config.json``), what ran it (device,
replicas, precision), its steady-state speed and its test accuracy, with the
speed-up and the accuracy difference relative to the first run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from mnist_research import files, output_files
from mnist_research.analysis import run_records
from mnist_research.analysis.run_records import RunRecord as Run
from mnist_research.errors import RunDirError

__all__ = ["Run", "differing_settings", "load_run", "rows", "to_json", "to_markdown", "write"]

# Settings never compared: where the data was read from says nothing about the run,
# the model family and the epochs have their own columns, and the distribute section is
# shown as what actually ran (device, strategy, replicas, precision from metrics.json).
_NOT_COMPARED = ("data.data_dir", "model.family", "distribute.", "train.epochs")

STEADY_NOTE = (
    "Speed is the steady state: epochs 2..N of each run (the first epoch also "
    "traces and compiles the step); a one-epoch run is timed on its only epoch (†). "
    "Speed-up: training examples/s over the first run's; Δ accuracy: test accuracy "
    "minus the first run's, in percentage points."
)


def load_run(run_dir: str) -> Run:
    """A finished run's config and metrics (``RunDirError`` when unfinished or damaged)."""
    return run_records.read_finished_run(run_dir)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differing_settings(configs: list[dict[str, Any]]) -> dict[str, str]:
    """Dotted setting → its column label, for every setting whose value differs between runs.

    The label is the setting's own name (``hidden_units``), or its dotted path
    where two sections share that name.
    """
    flat = [_flatten(c) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    differing = [
        k
        for k in keys
        if not k.startswith(_NOT_COMPARED)
        and len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1
    ]
    leaves = [k.rsplit(".", 1)[-1] for k in differing]
    return {k: (leaf if leaves.count(leaf) == 1 else k) for k, leaf in zip(differing, leaves)}


def _format_setting(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


def _steady(history: dict[str, list[float]]) -> tuple[float, float, bool]:
    """Mean seconds per epoch and examples/s over epochs 2..N; whether only epoch 1 was there."""
    seconds = np.asarray(history["epoch_seconds"], np.float64)
    examples = seconds * np.asarray(history["examples_per_second"], np.float64)
    timed = slice(1, None) if len(seconds) > 1 else slice(0, None)
    total = float(seconds[timed].sum())
    return (
        float(seconds[timed].mean()),
        float(examples[timed].sum()) / total if total else 0.0,
        len(seconds) == 1,
    )


def _unique_names(runs: list[Run]) -> list[str]:
    """Run dir names, or their paths below the common folder when names repeat."""
    names = [os.path.basename(os.path.normpath(r.path)) for r in runs]
    if len(set(names)) == len(names):
        return names
    paths = [os.path.abspath(r.path) for r in runs]
    common = os.path.commonpath(paths)
    return [os.path.relpath(p, common) if p != common else os.path.basename(p) for p in paths]


def rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One dict per run, in the given order; the first run is the reference.

    Keys: ``run``, ``path``, ``model`` (family), ``settings`` (label → value of
    each differing setting), ``device``, ``device_kind``, ``strategy``,
    ``replicas``, ``precision``, ``epochs``, ``epoch_seconds`` and
    ``examples_per_second`` (steady state), ``epoch1_only``, ``speedup``,
    ``test_accuracy``, ``accuracy_delta`` (percentage points), ``test_loss``,
    ``best_val_accuracy``, ``tensorflow``.
    """
    settings = differing_settings([r.config for r in runs])
    out = []
    for run, name in zip(runs, _unique_names(runs)):
        m, flat = run.metrics, _flatten(run.config)
        seconds, throughput, epoch1_only = _steady(m["history"])
        out.append(
            {
                "run": name,
                "path": run.path,
                "model": flat.get("model.family", "?"),
                "settings": {label: flat.get(key) for key, label in settings.items()},
                "device": m.get("device_name", "?"),
                "device_kind": m.get("device_kind", "?"),
                "strategy": m.get("strategy", "?"),
                "replicas": m.get("num_replicas", 1),
                "precision": _precision(flat.get("distribute.mixed_precision")),
                "epochs": m["epochs_completed"],
                "epoch_seconds": seconds,
                "examples_per_second": throughput,
                "epoch1_only": epoch1_only,
                "test_accuracy": m["test_accuracy"],
                "test_loss": m["test_loss"],
                "best_val_accuracy": run.best_val_accuracy,
                "tensorflow": m.get("tensorflow_version", "?"),
            }
        )
    base = out[0]
    for row in out:
        row["speedup"] = (
            row["examples_per_second"] / base["examples_per_second"]
            if base["examples_per_second"]
            else float("nan")
        )
        row["accuracy_delta"] = 100 * (row["test_accuracy"] - base["test_accuracy"])
    return out


def _precision(policy: Any) -> str:
    """The Keras mixed-precision policy, with ``none`` shown as what it is: float32."""
    return "float32" if policy in (None, "none") else str(policy)


def _device(row: dict[str, Any]) -> str:
    return f"{str(row['device_kind']).upper()} ({row['device']})"


def _speed_line(row: dict[str, Any], base: dict[str, Any]) -> str:
    return (
        f"- {row['run']} ({_device(row)}, {row['precision']}) vs {base['run']} "
        f"({_device(base)}, {base['precision']}): {_times(row['speedup'])} the training "
        f"examples/s, {row['epoch_seconds']:.2f} vs {base['epoch_seconds']:.2f} s/epoch, "
        f"test accuracy {row['accuracy_delta']:+.2f} pp"
    )


def to_markdown(table: list[dict[str, Any]]) -> str:
    """The table, a line per run against the first, and what the speed columns mean."""
    labels = list(table[0]["settings"]) if table else []
    strategies = len({r["strategy"] for r in table}) > 1
    header = [
        "run",
        "model",
        *labels,
        "device",
        *(["strategy"] if strategies else []),
        "replicas",
        "precision",
        "epochs",
        "s/epoch",
        "examples/s",
        "speed-up",
        "test acc",
        "Δ acc",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, r in enumerate(table):
        mark = " †" if r["epoch1_only"] else ""
        cells = [
            r["run"],
            r["model"],
            *(_format_setting(r["settings"][k]) for k in labels),
            _device(r),
            *([r["strategy"]] if strategies else []),
            str(r["replicas"]),
            r["precision"],
            str(r["epochs"]),
            f"{r['epoch_seconds']:.3f}{mark}",
            f"{r['examples_per_second']:,.0f}{mark}",
            _times(r["speedup"]),
            f"{100 * r['test_accuracy']:.2f} %",
            "(reference)" if i == 0 else f"{r['accuracy_delta']:+.2f} pp",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if not labels and len(table) > 1:
        lines += ["", "The runs' configurations are the same (besides devices and data paths)."]
    lines += ["", *(_speed_line(r, table[0]) for r in table[1:])]
    lines += ["", STEADY_NOTE]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def to_json(table: list[dict[str, Any]]) -> str:
    """The rows as one JSON document: ``{"reference", "settings", "note", "runs"}``."""
    return (
        json.dumps(
            {
                "reference": table[0]["run"] if table else None,
                "settings": list(table[0]["settings"]) if table else [],
                "note": STEADY_NOTE,
                "runs": table,
            },
            indent=2,
        )
        + "\n"
    )


def _zoomed(
    axis: Any, runs: list[Run], names: list[str], key: str, upper: float | None, title: str
) -> None:
    """Every run's ``key`` curve over the last epochs, axis fitted the way ``curves.png`` zooms."""
    from mnist_research.analysis import figures  # matplotlib only when plotting

    longest = max(len(r.metrics["history"][key]) for r in runs)
    first = figures.zoom_start(longest)
    shown, left = [], first + 1
    for i, (run, name) in enumerate(zip(runs, names)):
        values = np.asarray(run.metrics["history"][key], np.float64)
        epochs = np.arange(1, len(values) + 1)
        best = int(np.argmax(values) if upper is not None else np.argmin(values))
        axis.plot(epochs[first:], values[first:], "o-", color=f"C{i}", label=name)
        axis.plot(epochs[best], values[best], "*", markersize=14, color=f"C{i}", zorder=4)
        shown += [values[first:], values[best : best + 1]]
        left = min(left, best + 1)
    axis.set(
        title=f"{title}, epochs {first + 1}–{longest} (zoomed; ★ best)",
        xlabel="epoch",
        ylim=figures.zoomed_limits(np.concatenate(shown), upper),
        xlim=(left - 0.5, longest + 0.5),
    )
    if longest - left < 20:
        axis.set_xticks(np.arange(left, longest + 1))
    axis.legend(fontsize=8)


def plot(runs: list[Run], table: list[dict[str, Any]], path: str) -> str:
    """Validation accuracy and loss of every run, zoomed, and the steady-state speed bars."""
    from mnist_research.analysis import figures  # matplotlib only when plotting

    names = [r["run"] for r in table]
    fig, (ax_acc, ax_loss, ax_speed) = figures.plt.subplots(1, 3, figsize=(18, 5))
    _zoomed(ax_acc, runs, names, "val_accuracy", 1.0, "Validation accuracy")
    _zoomed(ax_loss, runs, names, "val_loss", None, "Validation loss")
    ax_acc.set_ylabel("accuracy")
    ax_loss.set_ylabel("cross-entropy")
    positions = np.arange(len(table))[::-1]  # the first run on top
    speeds = [r["examples_per_second"] for r in table]
    bars = ax_speed.barh(positions, speeds, color=[f"C{i}" for i in range(len(table))])
    for bar, r in zip(bars, table):
        ax_speed.annotate(
            f" {r['examples_per_second']:,.0f}/s ({_times(r['speedup'])})",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            va="center",
            ha="left",
            fontsize=9,
        )
    ax_speed.set_yticks(
        positions, [f"{r['run']}\n{_device(r)}, {r['precision']}" for r in table], fontsize=8
    )
    ax_speed.set_xlim(0, max(speeds) * 1.45 if max(speeds) > 0 else 1)
    ax_speed.set(
        title="Training speed, epochs 2..N",
        xlabel=f"training examples / second (×: relative to {names[0]})",
    )
    ax_speed.grid(axis="y", visible=False)
    return figures.save_figure(fig, path)


def write(output: str, runs: list[Run], table: list[dict[str, Any]]) -> dict[str, str]:
    """Writes ``compare.md``, ``compare.json`` and ``compare.png`` under ``output``.

    Raises:
      FileExistsError: one of them exists and ``compare`` did not write it
        (checked before anything is written).
    """
    paths = {
        "markdown": os.path.join(output, "compare.md"),
        "json": os.path.join(output, "compare.json"),
        "figure": os.path.join(output, "compare.png"),
    }
    starts = {".md": b"| run |", ".json": b'{\n  "reference": '}
    output_files.check_outputs(list(paths.values()), [], output_files.starts_by_kind(starts))
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"{output}: cannot create ({e.strerror or e})") from None
    files.atomic_write_text(paths["markdown"], to_markdown(table))
    files.atomic_write_text(paths["json"], to_json(table))
    plot(runs, table, paths["figure"])
    return paths


def _times(ratio: float) -> str:
    """A speed ratio readable at any size: ``1.00×``, ``0.0029×`` (not ``0.00×``), ``347×``."""
    if ratio >= 100:
        return f"{ratio:.0f}×"
    return f"{ratio:.2f}×" if ratio >= 0.01 else f"{ratio:.2g}×"
