"""Frozen, validated configuration objects.

Library code takes these objects and never reads absl FLAGS; only the entry
points (``train.py`` and friends) turn flags into a :class:`ExperimentConfig`.
Every dataclass validates itself in ``__post_init__`` and raises ``ValueError``
with a message that names the offending field, so a bad value fails before any
data is loaded or any TensorFlow op runs.

One module a section (``data``, ``model``, ``train``, ``distribute``), the whole
run and its JSON form in ``experiment``, the shared checks in ``checks``; every
public name is importable from ``mnist_research.config`` itself.
"""

from mnist_research.config.checks import is_device_name
from mnist_research.config.data import DATASETS, DataConfig
from mnist_research.config.distribute import MIXED_PRECISION, STRATEGIES, DistributeConfig
from mnist_research.config.experiment import ExperimentConfig, differences
from mnist_research.config.model import CONV_POOLING, MAX_CONV_BLOCKS, MODEL_FAMILIES, ModelConfig
from mnist_research.config.train import LR_SCHEDULES, MAX_SEED, TrainConfig

__all__ = [
    "CONV_POOLING", "DATASETS", "LR_SCHEDULES", "MAX_CONV_BLOCKS", "MAX_SEED", "MIXED_PRECISION",
    "MODEL_FAMILIES", "STRATEGIES", "DataConfig", "DistributeConfig", "ExperimentConfig",
    "ModelConfig", "TrainConfig", "differences", "is_device_name",
]
