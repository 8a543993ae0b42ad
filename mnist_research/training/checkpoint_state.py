"""The checkpointed training state: model, optimizer, epoch counter, history and settings.

The history and the run's settings travel inside the checkpoint (string
variables), and so do the best epoch's weights (``hooks.BestWeights``), so
a checkpoint, its history, its best weights and the settings it was trained
with can never disagree after a kill. Which checkpoint to restore is decided by
:mod:`mnist_research.rundir.checkpoint_files` (the files on disk are the truth, not
only the state file); training never restarts from scratch while a checkpoint exists.
"""

from __future__ import annotations

import glob
import json
import os
import shutil

import tensorflow as tf
from absl import logging

from mnist_research import files
from mnist_research.config import differences
from mnist_research.errors import RunDirError, cause, one_line
from mnist_research.rundir.checkpoint_files import (
    CHECKPOINT_DIR,
    HISTORY_KEY,
    START_AFRESH,
    STATE_FILE,
    Damaged,
    newest_usable,
    numbers_on_disk,
    other_data,
    read_state,
    saving,
    stored_settings,
    verify,
)
from mnist_research.training import devices
from mnist_research.training import history as history_lib
from mnist_research.training.history import BEST_DIR
from mnist_research.training.hooks import BestWeights
from mnist_research.training.loop import Trainer

__all__ = ["CHECKPOINT_DIR", "CheckpointState"]


class CheckpointState:
    """Saves and restores a :class:`Trainer`'s state with the run's history and settings.

    Args:
      trainer: whose model, optimizer and epoch counter are checkpointed.
      checkpoint_dir: the run's ``checkpoints/`` folder.
      chief: only the chief keeps checkpoints; other workers write theirs to a
        temporary folder they delete (every worker must take part in a save,
        or MultiWorkerMirroredStrategy deadlocks).
      max_to_keep: checkpoints kept on disk.
      data_sha256: the fingerprint of the data the run trains on, stored in
        every checkpoint ("": unknown).
    """

    def __init__(
        self,
        trainer: Trainer,
        checkpoint_dir: str,
        chief: bool,
        max_to_keep: int,
        data_sha256: str = "",
    ):
        self.config = trainer.config
        self.data_sha256 = data_sha256
        self.epoch = trainer.epoch
        self.history_json = tf.Variable("{}", dtype=tf.string, trainable=False)
        with trainer.strategy.scope():
            self.best = BestWeights(trainer.model)
        self.settings = tf.Variable(
            json.dumps(trainer.config.to_dict()), dtype=tf.string, trainable=False
        )
        objects = dict(
            optimizer=trainer.optimizer,
            epoch=trainer.epoch,
            history=self.history_json,
            best_weights=self.best.variables,
            model=trainer.model,
        )
        # What the run is (its settings, its data): every reader of a checkpoint checks them.
        self.identity = dict(
            settings=self.settings,
            data_sha256=tf.Variable(data_sha256, dtype=tf.string, trainable=False),
        )
        self.checkpoint = tf.train.Checkpoint(**self.identity, **objects)
        # Restores without the identity: checkpoints written before it existed still load.
        self._restorer = tf.train.Checkpoint(**objects)
        self.chief_dir = checkpoint_dir
        self.chief = chief
        self.max_to_keep = max_to_keep
        self.manager: tf.train.CheckpointManager | None = None
        self.restored: int | None = None
        # Whether the restored checkpoint held the settings it was trained with.
        self.settings_checked = False

    def restore(self, required: bool = False) -> history_lib.History:
        """Restores the newest usable checkpoint, if any; returns its history.

        Args:
          required: the run dir records finished epochs, so a checkpoint must exist.

        Raises:
          RunDirError: no checkpoint is usable although one exists (or is
            ``required``), or one was trained with different settings.
        """
        found = newest_usable(self.chief_dir, self._load)
        if found is None:
            if required:
                raise RunDirError(
                    f"{self.chief_dir}: no checkpoint, although the run records "
                    f"finished epochs; nothing was changed; {START_AFRESH}"
                )
            return history_lib.from_json("{}")
        history, self.restored = found
        logging.info("Restored %s", os.path.join(self.chief_dir, f"ckpt-{self.restored}"))
        return history

    def _load(self, prefix: str, number: int) -> history_lib.History:
        reader = verify(prefix)
        stored = stored_settings(reader)
        self.settings_checked = stored is not None
        if stored is not None and stored.identity() != self.config.identity():
            diffs = differences(stored.identity(), self.config.identity())
            raise RunDirError(
                f"{prefix} was trained with different settings ({'; '.join(diffs)}); {START_AFRESH}"
            )
        data = other_data(reader, self.data_sha256)
        if data:
            raise RunDirError(f"{prefix} was {data}; {START_AFRESH}")
        try:
            self._restorer.restore(prefix).assert_existing_objects_matched().expect_partial()
        except (AssertionError, ValueError) as e:
            raise RunDirError(
                f"{prefix} does not hold this model ({one_line(e)[:200]}); {START_AFRESH}"
            ) from None
        try:
            history = history_lib.from_json(reader.get_tensor(HISTORY_KEY).decode("utf-8"))
        except (ValueError, TypeError, AttributeError) as e:
            raise Damaged(f"its history does not parse ({e})") from None
        epoch = int(self.epoch.numpy())
        if epoch != number or len(history["loss"]) != epoch:
            raise Damaged(f"it holds epoch {epoch} with {len(history['loss'])} history entries")
        return history

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
                if self.manager is None:
                    self._repair_state()
                    self.manager = tf.train.CheckpointManager(
                        self.checkpoint, self.chief_dir, max_to_keep=self.max_to_keep
                    )
                self.manager.save(checkpoint_number=epoch)
            else:
                self.checkpoint.write(os.path.join(temp_dir, "ckpt"))
                shutil.rmtree(temp_dir, ignore_errors=True)
        except (OSError, tf.errors.OpError) as e:
            self._remove_partial(epoch, temp_dir)
            named, _ = read_state(self.chief_dir)
            latest = f"ckpt-{named}" if named is not None else "none"
            raise RunDirError(
                f"{self.chief_dir}: could not save the checkpoint of epoch "
                f"{epoch} ({cause(e)}); the latest checkpoint is "
                f"still {latest}"
            ) from None

    def _repair_state(self) -> None:
        """Rewrites a state file that does not name the restored checkpoint.

        TensorFlow's manager reads the state file to know which checkpoints to
        delete; a missing or garbage one would leave old checkpoints on disk forever.
        """
        named, _ = read_state(self.chief_dir)
        path = os.path.join(self.chief_dir, STATE_FILE)
        if named == self.restored:
            return
        if self.restored is None:
            if os.path.exists(path):
                os.unlink(path)  # names nothing usable; the first save writes a new one
            return
        kept = sorted(n for n in numbers_on_disk(self.chief_dir) if n <= self.restored)
        stamps = [_mtime(os.path.join(self.chief_dir, f"ckpt-{n}")) for n in kept]
        lines = [f'model_checkpoint_path: "ckpt-{self.restored}"']
        lines += [f'all_model_checkpoint_paths: "ckpt-{n}"' for n in kept]
        lines += [f"all_model_checkpoint_timestamps: {t}" for t in stamps]
        lines.append(f"last_preserved_timestamp: {min(stamps, default=0.0) - 1}")
        files.atomic_write_text(path, "\n".join(lines) + "\n")
        logging.info("Rewrote %s to name ckpt-%d", path, self.restored)

    def save_best(self, epoch: int) -> None:
        """Writes the best weights as their own checkpoint, ``checkpoints/best/ckpt-<epoch>``.

        Every worker takes part (non-chief ones write into a temporary folder
        they delete), as in :meth:`save`.
        """
        if self.chief:
            folder = os.path.join(self.chief_dir, BEST_DIR)
            with saving(folder, epoch):  # a failure: its partial files removed, one line
                self.best.write_checkpoint(folder, epoch, self.identity)
        else:
            temp_dir = os.path.join(self.chief_dir, f".best-{devices.worker_id()}-tmp")
            self.best.write_checkpoint(temp_dir, epoch, self.identity)
            shutil.rmtree(temp_dir, ignore_errors=True)

    def _remove_partial(self, epoch: int, temp_dir: str) -> None:
        partial = (
            glob.glob(os.path.join(glob.escape(self.chief_dir), f"ckpt-{epoch}[._]*"))
            if self.chief
            else [temp_dir]
        )
        for path in partial:
            if os.path.isdir(path):  # TF's sharded save writes into ckpt-N_temp/
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.unlink(path)


def _mtime(prefix: str) -> float:
    for path in (prefix + ".index", prefix + ".data-00000-of-00001"):
        if os.path.exists(path):
            return os.path.getmtime(path)
    return 0.0
