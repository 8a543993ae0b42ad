"""The checkpointed training state: model, optimizer, epoch counter and history.

The history travels inside the checkpoint (a string variable), and so do the
best epoch's weights (``best_epoch.BestWeights``), so the checkpoint, the
per-epoch history and the best weights can never disagree after a kill.
"""

from __future__ import annotations

import glob
import json
import os
import shutil

import tensorflow as tf
from absl import logging

from mnist_research.errors import RunDirError
from mnist_research.model import registry
from mnist_research.training import devices
from mnist_research.training import history as history_lib
from mnist_research.training.best_epoch import BEST_DIR, BestWeights
from mnist_research.training.trainer import Trainer

CHECKPOINT_DIR = "checkpoints"


class CheckpointState:
    """Saves and restores a :class:`Trainer`'s state with the run's history.

    Args:
      trainer: whose model, optimizer and epoch counter are checkpointed.
      checkpoint_dir: the run's ``checkpoints/`` folder.
      chief: only the chief keeps checkpoints; other workers write theirs to a
        temporary folder they delete (every worker must take part in a save,
        or MultiWorkerMirroredStrategy deadlocks).
      max_to_keep: checkpoints kept on disk.
    """

    def __init__(self, trainer: Trainer, checkpoint_dir: str, chief: bool, max_to_keep: int):
        self.history_json = tf.Variable("{}", dtype=tf.string, trainable=False)
        with trainer.strategy.scope():
            self.best = BestWeights(trainer.model)
        self.checkpoint = tf.train.Checkpoint(
            optimizer=trainer.optimizer, epoch=trainer.epoch, history=self.history_json,
            best_weights=self.best.variables, **registry.checkpoint_objects(trainer.model))
        self.chief_dir = checkpoint_dir
        self.chief = chief
        self.manager = tf.train.CheckpointManager(self.checkpoint, checkpoint_dir,
                                                  max_to_keep=max_to_keep) if chief else None

    def restore(self) -> history_lib.History:
        """Restores the latest checkpoint if there is one; returns its history."""
        latest = tf.train.latest_checkpoint(self.chief_dir)
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info("Restored %s", latest)
        return history_lib.from_json(self.history_json.numpy().decode("utf-8"))

    def save(self, epoch: int, history: history_lib.History) -> None:
        """Saves ``ckpt-<epoch>``; the ``checkpoint`` state file moves to it only once
        every file is written, so a failed or killed save leaves the last good one as latest.

        Raises:
          RunDirError: the save failed (disk full, permissions); its partial files
            are removed.
        """
        self.history_json.assign(json.dumps(history))
        temp_dir = os.path.join(self.chief_dir, f".{devices.worker_id()}-tmp")
        try:
            if self.chief:
                self.manager.save(checkpoint_number=epoch)
            else:
                self.checkpoint.write(os.path.join(temp_dir, "ckpt"))
                shutil.rmtree(temp_dir, ignore_errors=True)
        except (OSError, tf.errors.OpError) as e:
            self._remove_partial(epoch, temp_dir)
            latest = tf.train.latest_checkpoint(self.chief_dir) or "none"
            reason = getattr(e, "message", None) or getattr(e, "strerror", None) or str(e)
            raise RunDirError(f"{self.chief_dir}: could not save the checkpoint of epoch "
                              f"{epoch} ({reason.splitlines()[0]}); the latest checkpoint is "
                              f"still {os.path.basename(latest)}") from None

    def save_best(self, epoch: int) -> None:
        """Writes the best weights as their own checkpoint, ``checkpoints/best/ckpt-<epoch>``.

        Every worker takes part (non-chief ones write into a temporary folder
        they delete), as in :meth:`save`.
        """
        if self.chief:
            self.best.write_checkpoint(os.path.join(self.chief_dir, BEST_DIR), epoch)
        else:
            temp_dir = os.path.join(self.chief_dir, f".best-{devices.worker_id()}-tmp")
            self.best.write_checkpoint(temp_dir, epoch)
            shutil.rmtree(temp_dir, ignore_errors=True)

    def _remove_partial(self, epoch: int, temp_dir: str) -> None:
        partial = (glob.glob(os.path.join(glob.escape(self.chief_dir), f"ckpt-{epoch}[._]*"))
                   if self.chief else [temp_dir])
        for path in partial:
            if os.path.isdir(path):  # TF's sharded save writes into ckpt-N_temp/
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.unlink(path)
