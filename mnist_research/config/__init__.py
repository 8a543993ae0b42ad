"""Frozen, validated configuration objects.

Library code takes these objects and never reads absl FLAGS; only the entry
points (``train.py`` and friends) turn flags into a :class:`ExperimentConfig`.
Every dataclass validates itself in ``__post_init__`` and raises ``ValueError``
with a message that names the offending field, so a bad value fails before any
data is loaded or any TensorFlow op runs.

Every setting is one field made by ``fields.setting`` in ``settings``; the
model families, datasets and optimizers are one entry each in ``registry``, the
per-epoch metrics in ``metrics``; ``flags`` derives the absl flags and
``flags.txt`` from the declarations. The names other modules use are
importable from ``mnist_research.config``.
"""

from mnist_research.config.registry import (
    DATASETS,
    MODEL_FAMILIES,
    OPTIMIZERS,
    dataset,
    model_family,
    optimizer,
)
from mnist_research.config.settings import (
    MAX_SEED,
    SPLITS,
    STRATEGIES,
    DataConfig,
    DistributeConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
)

__all__ = [
    "DATASETS",
    "MAX_SEED",
    "MODEL_FAMILIES",
    "OPTIMIZERS",
    "SPLITS",
    "STRATEGIES",
    "DataConfig",
    "DistributeConfig",
    "ExperimentConfig",
    "ModelConfig",
    "TrainConfig",
    "dataset",
    "model_family",
    "optimizer",
]
