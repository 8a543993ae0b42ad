"""Frozen, validated configuration objects.

Library code takes these objects and never reads absl FLAGS; only the entry
points (``train.py`` and friends) turn flags into a :class:`ExperimentConfig`.
Every dataclass validates itself in ``__post_init__`` and raises ``ValueError``
with a message that names the offending field, so a bad value fails before any
data is loaded or any TensorFlow op runs.

One module a section (``data``, ``model``, ``train``, ``distribute``), the whole
run and its JSON form in ``experiment``, the shared checks in ``checks``. Every
setting is declared once, as a field made by ``fields.setting`` (help, bounds,
HParams group, resume identity); the model families and datasets are one entry
each in ``registry``, the optimizers in ``optimizers``; ``flags`` derives the
absl flags and ``flags.txt`` from those declarations. Every public name is
importable from ``mnist_research.config``.
"""

from mnist_research.config.checks import is_device_name
from mnist_research.config.data import DataConfig
from mnist_research.config.distribute import MIXED_PRECISION, STRATEGIES, DistributeConfig
from mnist_research.config.experiment import ExperimentConfig, differences
from mnist_research.config.model import CONV_POOLING, MAX_CONV_BLOCKS, ModelConfig
from mnist_research.config.optimizers import OPTIMIZERS, optimizer
from mnist_research.config.registry import DATASETS, MODEL_FAMILIES, dataset, model_family
from mnist_research.config.train import LR_SCHEDULES, MAX_SEED, TrainConfig

__all__ = [
    "CONV_POOLING",
    "DATASETS",
    "LR_SCHEDULES",
    "MAX_CONV_BLOCKS",
    "MAX_SEED",
    "MIXED_PRECISION",
    "MODEL_FAMILIES",
    "OPTIMIZERS",
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
