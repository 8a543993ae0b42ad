"""Frozen, validated configuration objects.

Library code takes these objects and never reads absl FLAGS; only the entry
points (``train.py`` and friends) turn flags into a :class:`ExperimentConfig`.
Every dataclass validates itself in ``__post_init__`` and raises ``ValueError``
with a message that names the offending field, so a bad value fails before any
data is loaded or any TensorFlow op runs.

Every setting is declared once, as a field made by ``fields.setting`` (help,
bounds, HParams group, resume identity), in ``settings`` (the four sections,
``data``, ``model``, ``train``, ``distribute``, and the whole run with its JSON
form); ``fields`` also holds the checks derived from the declarations. The
model families and datasets are one entry each in ``registry``, as are the
optimizers; the per-epoch metrics in ``metrics``; ``flags`` derives the
absl flags and ``flags.txt`` from the declarations. Every public name is
importable from ``mnist_research.config``.
"""

from mnist_research.config.fields import is_device_name
from mnist_research.config.registry import (
    DATASETS,
    MODEL_FAMILIES,
    OPTIMIZERS,
    dataset,
    model_family,
    optimizer,
)
from mnist_research.config.settings import (
    CONV_POOLING,
    LR_SCHEDULES,
    MAX_CONV_BLOCKS,
    MAX_SEED,
    MIXED_PRECISION,
    SPLITS,
    STRATEGIES,
    DataConfig,
    DistributeConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    differences,
)

__all__ = [
    "CONV_POOLING",
    "DATASETS",
    "LR_SCHEDULES",
    "MAX_CONV_BLOCKS",
    "MAX_SEED",
    "MIXED_PRECISION",
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
    "differences",
    "is_device_name",
    "model_family",
    "optimizer",
]
