"""Matplotlib/Seaborn figures written under ``RUN_DIR/reports/``.

Functions take plain NumPy arrays and dicts (a history, images, labels,
probabilities), never a model or FLAGS, and write PNGs atomically. Nothing here
is imported by the training step itself.
"""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from mnist_research.files import atomic_write_bytes  # noqa: E402

sns.set_theme(style="whitegrid")


def save_figure(fig: plt.Figure, path: str, dpi: int = 100) -> str:
    """Renders ``fig`` to PNG, writes it atomically, closes it; returns ``path``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_curves(history: dict[str, list[float]], path: str) -> str:
    """Training vs validation accuracy and loss, side by side.

    ``figsize=(18, 5)``; the accuracy axis spans 0–1, the loss axis follows the data.
    A dotted line marks the epoch with the best validation accuracy (the first on ties).
    """
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(18, 5))
    ax_acc.plot(epochs, history["accuracy"], "o-", label="training")
    ax_acc.plot(epochs, history["val_accuracy"], "s-", label="validation")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0.0, 1.0))
    ax_loss.plot(epochs, history["loss"], "o-", label="training")
    ax_loss.plot(epochs, history["val_loss"], "s-", label="validation")
    ax_loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
    best = int(np.argmax(history["val_accuracy"])) + 1 if history["val_accuracy"] else None
    for ax in (ax_acc, ax_loss):
        if best:
            ax.axvline(best, color="gray", linestyle=":", label=f"best validation (epoch {best})")
        ax.legend()
        ax.set_xticks(epochs if len(epochs) <= 20 else ax.get_xticks())
    return save_figure(fig, path)


def plot_samples(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                 path: str, count: int = 5) -> str:
    """``count`` test images with predicted vs true label; wrong ones in red."""
    count = min(count, len(images))
    fig, axes = plt.subplots(1, count, figsize=(3 * count, 3.4), squeeze=False)
    predicted = probabilities.argmax(axis=1)
    for i, ax in enumerate(axes[0]):
        ax.imshow(images[i].reshape(28, 28), cmap="gray_r")
        ok = predicted[i] == labels[i]
        ax.set_title(f"pred {predicted[i]} ({probabilities[i, predicted[i]]:.0%})\n"
                     f"true {labels[i]}" + ("" if ok else "  ✗"),
                     color="black" if ok else "crimson")
        ax.axis("off")
    fig.suptitle("Test images: predicted vs true")
    return save_figure(fig, path)


def plot_confusion_matrix(matrix: np.ndarray, path: str) -> str:
    """Seaborn heatmaps of the confusion matrix: counts, and rows normalized to 1."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    fig, (ax_counts, ax_norm) = plt.subplots(1, 2, figsize=(18, 7.5))
    sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax_counts,
                annot_kws={"size": 8})
    sns.heatmap(normalized, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1,
                ax=ax_norm, annot_kws={"size": 8})
    ax_counts.set(title=f"Confusion matrix (counts, {int(matrix.sum())} test images)",
                  xlabel="predicted", ylabel="true")
    ax_norm.set(title="Confusion matrix (each true class sums to 1 = recall on the diagonal)",
                xlabel="predicted", ylabel="true")
    return save_figure(fig, path)


def plot_per_class(per_class: dict[str, list[float]], path: str) -> str:
    """Grouped bars of per-class precision, recall and F1."""
    classes = np.arange(len(per_class["f1"]))
    fig, ax = plt.subplots(figsize=(18, 5))
    width = 0.27
    for offset, key in zip((-width, 0.0, width), ("precision", "recall", "f1")):
        ax.bar(classes + offset, per_class[key], width, label=key)
    low = min(min(per_class[k]) for k in ("precision", "recall", "f1"))
    ax.set(title="Per-class precision, recall and F1 (test set)", xlabel="class",
           ylabel="score", xticks=classes, ylim=(max(0.0, low - 0.05), 1.0))
    ax.legend(loc="lower right")
    return save_figure(fig, path)


def plot_mistakes(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                  indices: np.ndarray, path: str, columns: int = 8) -> str:
    """A grid of the most confident wrong predictions (``indices``, most confident first)."""
    rows = max(1, int(np.ceil(len(indices) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        predicted = int(probabilities[i].argmax())
        ax.imshow(images[i].reshape(28, 28), cmap="gray_r")
        ax.set_title(f"#{i}: pred {predicted} ({probabilities[i, predicted]:.0%})\n"
                     f"true {labels[i]} ({probabilities[i, labels[i]]:.0%})",
                     fontsize=9, color="crimson")
    fig.suptitle("Most confident mistakes on the test set" if len(indices)
                 else "No mistakes on the test set")
    return save_figure(fig, path)


def write_reports(report_dir: str, history: dict[str, list[float]], test_images: np.ndarray,
                  test_labels: np.ndarray, probabilities: np.ndarray, test_summary: dict,
                  config: dict, metrics: dict, mistakes: int = 24) -> dict[str, str]:
    """Writes every figure of a finished run and ``report.html``; returns name → path.

    ``test_summary`` is :func:`mnist_research.analysis.metrics.summarize` of the test set.
    """
    from mnist_research.analysis import html_report  # noqa: PLC0415 (keeps imports light
    from mnist_research.analysis import metrics as evaluation

    os.makedirs(report_dir, exist_ok=True)
    test_labels = np.asarray(test_labels, np.int64)
    worst = evaluation.most_confident_mistakes(test_labels, probabilities, mistakes)
    paths = {
        "curves": plot_curves(history, os.path.join(report_dir, "curves.png")),
        "samples": plot_samples(test_images, test_labels, probabilities,
                                os.path.join(report_dir, "samples.png")),
        "confusion_matrix": plot_confusion_matrix(test_summary["confusion_matrix"],
                                                  os.path.join(report_dir,
                                                               "confusion_matrix.png")),
        "per_class": plot_per_class(test_summary["per_class"],
                                    os.path.join(report_dir, "per_class.png")),
        "mistakes": plot_mistakes(test_images, test_labels, probabilities, worst,
                                  os.path.join(report_dir, "mistakes.png")),
    }
    paths["report"] = html_report.write(os.path.join(report_dir, "report.html"), config,
                                        metrics, test_summary, paths)
    return paths
