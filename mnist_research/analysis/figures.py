"""Matplotlib/Seaborn figures written under ``RUN_DIR/reports/``.

Functions take plain NumPy arrays and dicts (a history, images, labels,
probabilities), never a model or FLAGS, and write PNGs atomically.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # PNG files only, no windows; a notebook keeps its inline backend
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from mnist_research import config as config_lib
from mnist_research.analysis import html_report
from mnist_research.analysis import metrics as evaluation
from mnist_research.config.registry import DIGITS
from mnist_research.files import atomic_write_bytes, atomic_write_text

sns.set_theme(style="whitegrid")


def save_figure(fig: plt.Figure, path: str, dpi: int = 100) -> str:
    """Renders ``fig`` to PNG, writes it atomically, closes it; returns ``path``.

    ``tight_layout`` fits the margins to the labels before the one render;
    ``savefig(bbox_inches="tight")`` did the same by drawing every figure
    twice (the five figures took 3.2 s instead of 2.3 s on a 2-core CPU).
    """
    # tight_layout left the suptitle over the titles of the samples' image axes: keep a band.
    fig.tight_layout(rect=(0, 0, 1, 0.92) if fig.get_suptitle() else None)
    buffer = io.BytesIO()
    # The PNG's Software text chunk, before the image data, tells our figures from other
    # files (output_files.FIGURE_MARK).
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": "mnist_research"})
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_curves(history: dict[str, list[float]], path: str) -> str:
    """Training vs validation accuracy and loss, and the last epochs' accuracy zoomed in.

    The first panel's accuracy axis spans 0–1 (the whole run at a glance), the
    loss axis follows the data; the zoomed panel stars the best validation epoch.
    """
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_acc, ax_loss, ax_zoom) = plt.subplots(1, 3, figsize=(18, 5))
    for ax, key in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        ax.plot(epochs, history[key], "o-", label="training")
        ax.plot(epochs, history[f"val_{key}"], "s-", label="validation")
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0.0, 1.0))
    ax_loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
    _plot_last_epochs(ax_zoom, epochs, history)
    for ax in (ax_acc, ax_loss, ax_zoom):
        ax.legend(loc="best")
    return save_figure(fig, path)


def zoom_start(num_epochs: int) -> int:
    """Index of the first epoch a zoomed panel shows: the last half of the epochs, at least 2.

    The first epochs' large changes set a 0–1 axis; from the middle of a run on,
    the curves differ by tenths of a percent, which only a fitted axis shows.
    """
    return max(0, min(num_epochs - 2, num_epochs // 2))


def zoomed_limits(values: np.ndarray, upper: float | None = 1.0) -> tuple[float, float]:
    """Axis limits fitted to ``values`` with a 10 % margin (at least 0.002), capped at ``upper``."""
    values = np.asarray(values, np.float64)
    pad = max(0.002, 0.1 * float(np.ptp(values)))
    high = float(values.max()) + pad
    return float(values.min()) - pad, high if upper is None else min(upper, high)


def _plot_last_epochs(ax: plt.Axes, epochs: np.ndarray, history: dict[str, list[float]]) -> None:
    """The zoomed panel: accuracy over the last epochs, axis fitted to the values."""
    first = zoom_start(len(epochs))
    shown = epochs[first:]
    train = np.asarray(history["accuracy"][first:])
    val = np.asarray(history["val_accuracy"][first:])
    ax.plot(shown, train, "o-", label="training")
    ax.plot(shown, val, "s-", label="validation")
    best = int(np.argmax(history["val_accuracy"]))
    best_epoch, best_val = epochs[best], history["val_accuracy"][best]
    label = f"best validation {best_val:.4f} (epoch {best_epoch})"
    ax.plot(best_epoch, best_val, "*", markersize=16, color="crimson", label=label, zorder=4)
    ax.set(
        title=f"Accuracy, epochs {shown[0]}–{shown[-1]} (zoomed)",
        xlabel="epoch",
        ylabel="accuracy",
        ylim=zoomed_limits(np.concatenate([train, val, [best_val]])),
        xlim=(min(shown[0], best_epoch) - 0.5, shown[-1] + 0.5),
    )
    ax.set_xticks(np.arange(min(shown[0], best_epoch), shown[-1] + 1))


def plot_samples(
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    path: str,
    count: int = 5,
    class_names: Sequence[str] = DIGITS,
) -> str:
    """Two rows of test images with predicted vs true label and a confidence bar under each.

    The first row is the first ``count`` test images (the original notebook's figure); the
    second, the ``count`` least confident predictions of the whole test set, where the
    model's mistakes and doubts show. Each bar is its own thin axes below its image, so
    the layout keeps it clear of the next row's captions.
    """
    count = min(count, len(images))
    predicted = np.asarray(probabilities).argmax(axis=1)
    confidence = np.asarray(probabilities).max(axis=1)
    rows = {
        "first test images": np.arange(count),
        "least confident": np.argsort(confidence, kind="stable")[:count],
    }
    fig = plt.figure(figsize=(3 * count, 8.4))  # square images at count=5
    grid = fig.add_gridspec(4, count, height_ratios=(1, 0.07, 1, 0.07))
    for r, (row_name, indices) in enumerate(rows.items()):
        for c, i in enumerate(indices):
            ax_image, ax_bar = fig.add_subplot(grid[2 * r, c]), fig.add_subplot(grid[2 * r + 1, c])
            right = predicted[i] == labels[i]
            ax_image.imshow(np.asarray(images[i]).reshape(28, 28), cmap="gray_r", aspect="auto")
            ax_image.set_title(
                f"#{i}: pred {class_names[predicted[i]]} ({confidence[i]:.0%})\n"
                f"true {class_names[labels[i]]}" + ("" if right else "  ✗"),
                color="black" if right else "crimson",
            )
            ax_image.set(xticks=[], yticks=[])
            ax_image.set_frame_on(False)
            if c == 0:
                ax_image.set_ylabel(row_name, fontsize=12)
            # The bar: filled to the predicted class's probability.
            ax_bar.barh([0], [1.0], color="0.88")
            ax_bar.barh([0], [confidence[i]], color="seagreen" if right else "crimson")
            ax_bar.set(xlim=(0, 1), ylim=(-0.4, 0.4))
            ax_bar.axis("off")
    fig.suptitle("Test images: predicted vs true (bar: the model's confidence)")
    return save_figure(fig, path)


def plot_confusion_matrix(
    matrix: np.ndarray, path: str, class_names: Sequence[str] = DIGITS
) -> str:
    """Seaborn heatmaps of the confusion matrix: counts, and rows normalized to 1."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    fig, (ax_counts, ax_norm) = plt.subplots(1, 2, figsize=(18, 7.5))
    names = list(class_names)
    shared = dict(annot=True, cmap="Blues", annot_kws={"size": 8}, xticklabels=names)
    sns.heatmap(matrix, fmt="d", cbar=False, ax=ax_counts, yticklabels=names, **shared)
    sns.heatmap(normalized, fmt=".2f", vmin=0, vmax=1, ax=ax_norm, yticklabels=names, **shared)
    ax_counts.set(title=f"Confusion matrix (counts, {int(matrix.sum())} test images)")
    ax_norm.set(title="Confusion matrix (each true class sums to 1 = recall on the diagonal)")
    for ax in (ax_counts, ax_norm):
        ax.set(xlabel="predicted", ylabel="true")
    return save_figure(fig, path)


def plot_per_class(
    per_class: dict[str, list[float]], path: str, class_names: Sequence[str] = DIGITS
) -> str:
    """Per-class precision, recall and F1 as dots (a dot, unlike a bar, does not claim the
    axis starts at zero, so the axis can show the differences: it starts at 0.9, or lower
    when a score is below that). The legend sits above the axes, clear of every class."""
    classes = np.arange(len(per_class["f1"]))
    fig, ax = plt.subplots(figsize=(18, 5))
    for offset, key, marker in zip((-0.2, 0.0, 0.2), ("precision", "recall", "f1"), "o^s"):
        ax.plot(classes + offset, per_class[key], marker, markersize=9, linestyle="none", label=key)
    low = min(min(per_class[k]) for k in ("precision", "recall", "f1"))
    bottom = min(0.9, np.floor((low - 0.02) * 20) / 20)
    ax.set(
        xlabel="class",
        ylabel="score",
        xticks=classes,
        ylim=(max(0.0, bottom), 1.0),
        xlim=(-0.6, len(classes) - 0.4),
    )
    ax.set_xticklabels(list(class_names)[: len(classes)])
    ax.set_title("Per-class precision, recall and F1 (test set)", pad=30)
    for boundary in classes[:-1] + 0.5:
        ax.axvline(boundary, color="0.85", linewidth=0.8)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    return save_figure(fig, path)


def plot_mistakes(
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    path: str,
    count: int = 24,
    columns: int = 8,
    class_names: Sequence[str] = DIGITS,
) -> str:
    """A grid of the ``count`` most confident wrong predictions, most confident first.

    The digits are tiled into one image on one axes, each captioned above: it looks
    like a grid of subplots and renders in a quarter of the time (24 axes with their
    ticks and titles took ~1.3 s of CPU; this ~0.3 s).
    """
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(labels))
    confidence = probabilities[wrong, predicted[wrong]]
    indices = wrong[np.argsort(-confidence, kind="stable")][:count]
    rows = max(1, int(np.ceil(len(indices) / columns)))
    cell_h, cell_w, caption = 28 + 7, 28 + 4, 7
    canvas = np.zeros((rows * cell_h, columns * cell_w), np.uint8)
    # The figure has the canvas's proportions (2.2 inches a cell) plus a band for the
    # title: a fixed size left the image fitted to the width and a blank band under the title.
    inch = 2.2 / cell_w
    fig, ax = plt.subplots(figsize=(inch * canvas.shape[1], inch * canvas.shape[0] + 0.5))
    for k, i in enumerate(indices):
        row, col = divmod(k, columns)
        top, left = row * cell_h + caption, col * cell_w + 2
        canvas[top : top + 28, left : left + 28] = np.asarray(images[i]).reshape(28, 28)
        text = (
            f"#{i}: pred {class_names[predicted[i]]} ({probabilities[i, predicted[i]]:.0%})\n"
            f"true {class_names[labels[i]]} ({probabilities[i, labels[i]]:.0%})"
        )
        ax.text(left + 14, top - 1, text, ha="center", va="bottom", fontsize=9, color="crimson")
    ax.imshow(canvas, cmap="gray_r", interpolation="nearest", vmin=0, vmax=255)
    ax.axis("off")
    what = "Most confident mistakes" if len(indices) else "No mistakes"
    ax.set_title(f"{what} on the test set", fontsize=13)
    return save_figure(fig, path)


def write_reports(
    report_dir: str,
    config: dict,
    metrics: dict,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    logits: np.ndarray,
    summary: dict,
) -> dict[str, str]:
    """Writes every figure of a finished run and ``report.html``; returns name → path.

    ``metrics`` is the run's ``metrics.json`` (its history is drawn); ``summary`` is
    ``analysis.metrics.summarize`` of the test set's labels and ``logits``.
    """
    names = config_lib.DATASETS[config["data"]["dataset"]].class_names
    examples = (test_images, test_labels, evaluation.softmax(logits))
    png = {name: os.path.join(report_dir, f"{name}.png") for name in html_report.FIGURES}
    paths = {
        "curves": plot_curves(metrics["history"], png["curves"]),
        "samples": plot_samples(*examples, png["samples"], class_names=names),
        "confusion_matrix": plot_confusion_matrix(
            summary["confusion_matrix"], png["confusion_matrix"], names
        ),
        "per_class": plot_per_class(summary["per_class"], png["per_class"], names),
        "mistakes": plot_mistakes(*examples, png["mistakes"], class_names=names),
    }
    paths["report"] = os.path.join(report_dir, "report.html")
    atomic_write_text(paths["report"], html_report.render(config, metrics, summary, paths, names))
    return paths
