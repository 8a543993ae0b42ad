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

from mnist_research.run_dir import atomic_write_bytes  # noqa: E402

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
    """
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(18, 5))
    ax_acc.plot(epochs, history["accuracy"], "o-", label="training")
    ax_acc.plot(epochs, history["val_accuracy"], "s-", label="validation")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0.0, 1.0))
    ax_loss.plot(epochs, history["loss"], "o-", label="training")
    ax_loss.plot(epochs, history["val_loss"], "s-", label="validation")
    ax_loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
    for ax in (ax_acc, ax_loss):
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


def write_reports(report_dir: str, history: dict[str, list[float]], test_images: np.ndarray,
                  test_labels: np.ndarray, probabilities: np.ndarray) -> list[str]:
    """Writes every figure of a finished run; returns their paths."""
    os.makedirs(report_dir, exist_ok=True)
    return [
        plot_curves(history, os.path.join(report_dir, "curves.png")),
        plot_samples(test_images, test_labels, probabilities,
                     os.path.join(report_dir, "samples.png")),
    ]
