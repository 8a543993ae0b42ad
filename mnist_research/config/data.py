"""Where the data comes from and how it is split: :class:`DataConfig`."""

from __future__ import annotations

import dataclasses

from mnist_research.config.checks import check
from mnist_research.config.fields import check_declared, setting
from mnist_research.config.registry import DATASETS

# The splits a DataConfig yields: the test set, and the training set's two parts.
SPLITS = ("test", "validation", "train")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split.

    Each field's help, bounds and role are declared with it (``config.fields``).
    As in Keras ``validation_split``, the *last* fraction of the training set is
    held out, so the split does not depend on the seed.
    """

    dataset: str = setting("mnist", "Which dataset.", choices=DATASETS, hparam="run", identity=True)
    data_dir: str | None = setting(
        None,
        "Folder with <dataset>.npz or the four IDX files (.gz or raw), or an .npz path. "
        "Default: download with tf.keras.datasets.",
        path=True,
        hparam=None,
        identity=False,
    )
    validation_split: float = setting(
        0.2,
        "Fraction of training data held out for validation (the last fraction, as Keras does).",
        above=0.0,
        below=1.0,
        hparam="run",
        identity=True,
    )
    limit_train: int = setting(
        0,
        "Use only the first N training examples (0: all).",
        minimum=0,
        hparam="run",
        identity=True,
    )
    limit_test: int = setting(
        0, "Use only the first N test examples (0: all).", minimum=0, hparam=None, identity=False
    )

    def __post_init__(self):
        check_declared(self)
        entry = DATASETS[self.dataset]
        check(
            entry.keras_name is not None or bool(self.data_dir),
            f"--dataset={self.dataset} has no downloader: pass --data_dir=DIR where DIR holds "
            f"{' or '.join(entry.npz_names)} or the four IDX files",
        )
