"""Reading a finished run back: its config, data split and trained model.

``evaluate``, ``predict`` and ``report`` use these so that all three load a run
the same way: from the SavedModel export by default, or from the latest
checkpoint (``from_checkpoint=True``), rebuilt from the run's ``config.json``.
A rerun of the train command on a finished run checks its export here too
(:func:`export_problem`).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

from mnist_research.config import ExperimentConfig
from mnist_research.data import sources as data_lib
from mnist_research.data.pipeline import IMAGE_SHAPE, LogitsFn, batched, logits_function
from mnist_research.errors import MnistResearchError, RunDirError, one_line
from mnist_research.inference import export as export_lib
from mnist_research.model import registry
from mnist_research.rundir import existing, layout, records, restore
from mnist_research.training import history


def load_config(run_dir: str) -> ExperimentConfig:
    """The run's resolved configuration.

    A damaged ``config.json`` is replaced, for this command only, by the
    settings stored in the newest usable checkpoint, with one warning line,
    when they are the run's: the identity ``flags.txt`` records (if readable).

    Raises:
      RunDirError: ``run_dir`` holds no ``config.json``, or a damaged one and no
        checkpoint with stored settings; a run dir that holds links (see
        ``existing.check_contained``).
    """
    if os.path.isdir(run_dir):
        existing.check_contained(run_dir)
    try:
        config = records.load_config(run_dir)
    except records.DamagedFileError as e:
        stored = _settings_from_checkpoint(run_dir)
        if stored is None:
            raise
        logging.warning("%s; using the settings stored in %s", e, stored[1])
        return stored[0]
    if config is None:
        path = os.path.join(run_dir, layout.CONFIG_FILE)
        raise RunDirError(f"{path}: not found; is {run_dir} a run directory?")
    return config


def _settings_from_checkpoint(run_dir: str) -> tuple[ExperimentConfig, str] | None:
    def load(prefix: str, number: int) -> tuple[ExperimentConfig, str]:
        settings = restore.stored_settings(restore.verify(prefix))
        if settings is None:
            raise restore.Damaged("it predates stored settings")
        return settings, prefix

    try:
        found = restore.newest_usable(os.path.join(run_dir, layout.CHECKPOINT_DIR), load)
    except RunDirError:
        return None
    if not found:
        return None
    (settings, prefix), recorded = found[0], records.flags_txt_config(run_dir)
    diffs = restore.identity_differences(settings, recorded) if recorded else []
    if diffs:
        raise RunDirError(
            f"{prefix} was trained with different settings than {layout.FLAGS_FILE} "
            f"records ({'; '.join(diffs)}): another run's checkpoint"
        )
    return settings, prefix


def _checkpoint_dir(run_dir: str, config: ExperimentConfig) -> str:
    """The checkpoints of the epoch the run exported.

    A ``--restore_best`` run tests and exports its best epoch, kept in
    ``checkpoints/best/``; any other run, its last epoch.
    """
    folder = os.path.join(run_dir, layout.CHECKPOINT_DIR)
    best = os.path.join(folder, history.BEST_DIR)
    if config.train.restore_best and layout.read_state(best)[0]:
        return best
    return folder


class ExportedClassifier:
    """Loads ``RUN_DIR/export`` and classifies uint8 images in batches.

    Raises:
      RunDirError: the SavedModel cannot be loaded or run (an emptied
        ``saved_model.pb``, truncated variables, a missing signature).
    """

    def __init__(self, export_dir: str):
        self.path = export_dir
        try:
            self._loaded = tf.saved_model.load(export_dir)
            self._serve = self._loaded.signatures["serving_default"]
            # One tiny call: truncated variables or a mangled graph fail here, not later.
            self._serve(images=tf.zeros((1, *IMAGE_SHAPE), tf.uint8))["logits"]
        except Exception as e:  # A damaged SavedModel raises from protobuf, TF and Python alike.
            raise self._damaged(e) from None

    def _damaged(self, error: Exception) -> RunDirError:
        return RunDirError(
            f"{self.path}: the SavedModel is damaged ({one_line(error)[:200]}); "
            f"use --from_checkpoint, or rerun the train command with "
            f"--run_dir={os.path.dirname(os.path.normpath(self.path))} to "
            f"export it again"
        )

    def logits(self, images: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Logits ``[N, 10]`` for uint8 images ``[N, 28, 28]``."""
        try:
            return batched(
                lambda chunk: self._serve(images=tf.constant(chunk))["logits"], images, batch_size
            )
        except (tf.errors.OpError, KeyError, ValueError) as e:
            raise self._damaged(e) from None


def foreign_export(run_dir: str) -> str | None:
    """One line when ``export/`` holds other weights than the run recorded, else ``None``.

    Runs finished before ``export_sha256`` was recorded in ``metrics.json`` are
    not checked.
    """
    try:
        metrics = records.finished_metrics(run_dir) or {}
    except MnistResearchError:  # a damaged metrics.json is reported where it is read
        return None
    recorded = metrics.get("export_sha256")
    export_dir = os.path.join(run_dir, export_lib.EXPORT_DIR)
    if recorded and export_lib.weights_sha256(export_dir) != recorded:
        return (
            f"{export_dir}: holds other weights than this run exported (their sha256 "
            f"differs from metrics.json's export_sha256)"
        )
    return None


def export_problem(run_dir: str) -> str | None:
    """Why a finished run's SavedModel cannot serve or is not its own (one line), or ``None``."""
    try:
        ExportedClassifier(os.path.join(run_dir, export_lib.EXPORT_DIR))
    except RunDirError as e:
        return str(e)
    return foreign_export(run_dir)


def load_split(
    config: ExperimentConfig, split: str, data_dir: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and labels of one split, as the run saw them.

    ``data_dir`` overrides where the data is read from (the split itself, the
    limits and the validation fraction come from the run's config).
    """
    data_config = config.data
    if data_dir is not None:
        data_config = dataclasses.replace(data_config, data_dir=data_dir)
    splits = data_lib.split(data_lib.load(data_config), data_config)
    return {
        "test": (splits.x_test, splits.y_test),
        "validation": (splits.x_val, splits.y_val),
        "train": (splits.x_train, splits.y_train),
    }[split]


def load_logits_fn(run_dir: str, from_checkpoint: bool = False) -> tuple[LogitsFn, str]:
    """A function uint8 ``[N, 28, 28]`` → logits ``[N, 10]``, and what it was loaded from.

    From a checkpoint, the model is rebuilt from ``config.json`` and must match
    the checkpoint (stored settings, every variable present, every shape).

    Raises:
      RunDirError: no export (or no checkpoint) in ``run_dir``, a damaged
        export, or a checkpoint that does not match the run's config.
    """
    if not from_checkpoint:
        export_dir = os.path.join(run_dir, export_lib.EXPORT_DIR)
        if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
            raise RunDirError(
                f"{export_dir}: no SavedModel (the run has not finished?); "
                f"use --from_checkpoint to load the latest checkpoint"
            )
        classifier = ExportedClassifier(export_dir)  # a damaged one fails here
        foreign = foreign_export(run_dir)
        if foreign:
            raise RunDirError(
                f"{foreign}; rerun train with this --run_dir to export again, "
                f"or use --from_checkpoint"
            )
        return classifier.logits, export_dir

    config = load_config(run_dir)
    model = registry.create(config.model)
    folder = _checkpoint_dir(run_dir, config)
    prefix = restore.restore_model(model, folder, config, records.recorded_data(run_dir))
    return logits_function(model), prefix
