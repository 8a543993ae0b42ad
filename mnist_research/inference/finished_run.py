"""Reading a finished run back: its config, data split and trained model.

``evaluate``, ``predict`` and ``report`` use these so that all three load a run
the same way: from the SavedModel export by default, or from the latest
checkpoint (``from_checkpoint=True``), rebuilt from the run's ``config.json``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from mnist_research import files
from mnist_research.config import ExperimentConfig
from mnist_research.data import sources as data_lib
from mnist_research.data.model_input import LogitsFn, logits_function
from mnist_research.errors import RunDirError
from mnist_research.inference import export as export_lib
from mnist_research.model import registry
from mnist_research.training import run_dir as run_dir_lib

SPLITS = ("test", "validation", "train")



def load_config(run_dir: str) -> ExperimentConfig:
    """The run's resolved configuration.

    Raises:
      RunDirError: ``run_dir`` holds no readable ``config.json``.
    """
    path = os.path.join(run_dir, run_dir_lib.CONFIG_FILE)
    try:
        raw = files.read_json(path)
        if raw is None:
            raise RunDirError(f"{path}: not found; is {run_dir} a run directory?")
        return ExperimentConfig.from_dict(raw)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{path}: unreadable ({e})") from None


def load_split(config: ExperimentConfig, split: str, data_dir: Optional[str] = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and labels of one split, as the run saw them.

    ``data_dir`` overrides where the data is read from (the split itself, the
    limits and the validation fraction come from the run's config).
    """
    data_config = config.data
    if data_dir is not None:
        data_config = dataclasses.replace(data_config, data_dir=data_dir)
    splits = data_lib.split(data_lib.load(data_config), data_config)
    return {"test": (splits.x_test, splits.y_test),
            "validation": (splits.x_val, splits.y_val),
            "train": (splits.x_train, splits.y_train)}[split]


def load_logits_fn(run_dir: str, from_checkpoint: bool = False) -> tuple[LogitsFn, str]:
    """A function uint8 ``[N, 28, 28]`` → logits ``[N, 10]``, and what it was loaded from.

    Raises:
      RunDirError: no export (or no checkpoint) in ``run_dir``.
    """
    if not from_checkpoint:
        export_dir = os.path.join(run_dir, export_lib.EXPORT_DIR)
        if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
            raise RunDirError(f"{export_dir}: no SavedModel (the run has not finished?); "
                              f"use --from_checkpoint to load the latest checkpoint")
        return export_lib.ExportedClassifier(export_dir).logits, export_dir

    config = load_config(run_dir)
    checkpoint_dir = os.path.join(run_dir, "checkpoints")
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest is None:
        raise RunDirError(f"{checkpoint_dir}: no checkpoint to load")
    model = registry.create(config.model)
    tf.train.Checkpoint(**registry.checkpoint_objects(model)).restore(latest).expect_partial()

    return logits_function(model), latest
