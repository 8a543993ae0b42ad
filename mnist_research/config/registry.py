"""The model families, datasets, optimizers and per-epoch metrics the project knows: one entry each.

Plain data (no TensorFlow), so flags, checks and ``--help`` read the names and
help lines before TensorFlow is imported. A family's class is in
``model/registry.py``, an optimizer's builder in ``training/optimizers.py`` and a
metric's batch sum in ``training.loop.BATCH_SUMS``, each under its entry's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # --help and the config checks import no numpy
    import numpy as np

# The IDX file names every MNIST-format dataset uses (each raw or ``.gz``).
MNIST_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _by_name(*entries: Any) -> dict[str, Any]:
    """A registry: its entries by name, in the order ``--help`` lists them."""
    return {entry.name: entry for entry in entries}


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """One ``--model`` value; ``reads``: the :class:`ModelConfig` groups the family uses."""

    name: str
    reads: tuple[str, ...]
    help: str  # one line for --help


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One ``--dataset`` value."""

    name: str
    keras_name: str | None  # tf.keras.datasets.<keras_name> downloads it; None: --data_dir needed
    npz_names: tuple[str, ...]  # .npz files in --data_dir that hold it (Keras layout)
    class_names: tuple[str, ...]  # what each label 0..9 means, for reports and predictions
    # The four IDX files by Keras array name.
    idx_files: dict[str, str] = dataclasses.field(default_factory=lambda: dict(MNIST_IDX_FILES))
    # uint8 images [N, 28, 28] as stored -> as MNIST stores them (upright, not mirrored), applied
    # to both splits right after they are read and validated, from any source. None: as MNIST's.
    transform: Callable[[np.ndarray], np.ndarray] | None = None


MODEL_FAMILIES: dict[str, ModelFamily] = _by_name(
    ModelFamily("mlp", ("dense", "batch_norm"), "dense blocks (the original notebook's recipe)"),
    ModelFamily("cnn", ("conv", "dense", "batch_norm"), "conv blocks, then dense blocks"),
    ModelFamily("linear", (), "one Dense layer (multinomial logistic regression)"),
)

DIGITS = tuple(str(d) for d in range(10))

DATASETS: dict[str, Dataset] = _by_name(
    Dataset("mnist", "mnist", ("mnist.npz",), DIGITS),
    Dataset(
        "fashion_mnist",
        "fashion_mnist",
        ("fashion_mnist.npz",),
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
    Dataset(
        "kmnist",
        None,
        ("kmnist.npz",),
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    ),
    Dataset(
        "emnist_digits",
        None,
        ("emnist_digits.npz",),
        DIGITS,
        {
            "x_train": "emnist-digits-train-images-idx3-ubyte",
            "y_train": "emnist-digits-train-labels-idx1-ubyte",
            "x_test": "emnist-digits-test-images-idx3-ubyte",
            "y_test": "emnist-digits-test-labels-idx1-ubyte",
        },
        # EMNIST stores each image transposed: its rows are MNIST's columns.
        transform=lambda images: images.transpose(0, 2, 1),
    ),
)


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """One ``--optimizer`` value; ``slots(train_config)``: slot variables per model variable
    (Adam's two moments; SGD's momentum, none without it)."""

    name: str
    help: str  # one line for --help
    slots: Callable[[Any], int]


OPTIMIZERS: dict[str, Optimizer] = _by_name(
    Optimizer("adam", "Adam (the notebook's recipe)", lambda train: 2),
    Optimizer("adamw", "Adam with decoupled --weight_decay", lambda train: 2),
    Optimizer(
        "sgd",
        "SGD, with --momentum and --weight_decay",
        lambda train: 1 if train.momentum else 0,
    ),
)


@dataclasses.dataclass(frozen=True)
class Metric:
    """A per-epoch metric, a mean over examples; ``name``: its history key and tag.

    ``required``: every finished ``metrics.json`` holds it (the metrics the
    project started with); a metric added later is absent from older runs, not
    damaged. The history keys, the epoch log line, the progress bar, the
    TensorBoard scalars, the HParams metrics, ``metrics.json`` and its check, and
    the report's history table derive from :data:`METRICS`.
    """

    name: str
    required: bool = False


METRICS: tuple[Metric, ...] = (
    Metric("loss", required=True),
    Metric("accuracy", required=True),
)
METRIC_NAMES = tuple(metric.name for metric in METRICS)

# Per-epoch timing, recorded beside the metrics.
TIMING_KEYS = ("epoch_seconds", "examples_per_second")

# Every key of a run's per-epoch history.
HISTORY_KEYS = METRIC_NAMES + tuple(f"val_{name}" for name in METRIC_NAMES) + TIMING_KEYS
