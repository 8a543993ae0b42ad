"""Where the data comes from and how it is split: :class:`DataConfig`."""

from __future__ import annotations

import dataclasses
from typing import Optional

from mnist_research.config.checks import check, check_at_least, check_choice, check_types

DATASETS = ("mnist", "fashion_mnist")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split.

    Attributes:
      dataset: ``mnist`` or ``fashion_mnist``.
      data_dir: folder (or ``.npz`` file) with local data; ``None`` downloads
        through ``tf.keras.datasets``.
      validation_split: fraction of the training set held out for validation.
        As in Keras ``validation_split``, the *last* fraction is held out, so the
        split does not depend on the seed.
      limit_train: use only the first N training examples (0: all). For quick
        experiments and smoke runs.
      limit_test: use only the first N test examples (0: all).
    """

    dataset: str = "mnist"
    data_dir: Optional[str] = None
    validation_split: float = 0.2
    limit_train: int = 0
    limit_test: int = 0

    def __post_init__(self):
        check_types(self)
        check_choice("dataset", self.dataset, DATASETS)
        check(0.0 < self.validation_split < 1.0,
              f"validation_split must be in (0, 1), got {self.validation_split}")
        check_at_least(self, "limit_train", 0)
        check_at_least(self, "limit_test", 0)
