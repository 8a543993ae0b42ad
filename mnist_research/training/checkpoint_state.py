"""The checkpointed training state: model, optimizer, epoch counter, history and settings.

The history and the run's settings travel inside the checkpoint (string
variables), and so do the best epoch's weights (:class:`BestWeights`, also
written at the run's end as their own checkpoint, ``checkpoints/best/``), so
a checkpoint, its history, its best weights and the settings it was trained
with can never disagree after a kill. Restoring one into a run dir that holds
checkpoints is :func:`mnist_research.training.existing_run.restore`; training
never restarts from scratch while a checkpoint exists.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
from collections.abc import Callable, Iterator

import tensorflow as tf

from mnist_research.errors import RunDirError, cause, writing
from mnist_research.rundir import layout
from mnist_research.training import devices
from mnist_research.training import history as history_lib
from mnist_research.training.history import BEST_DIR
from mnist_research.training.loop import Trainer


class BestWeights:
    """A copy of every model variable, taken at the best epoch (created in the strategy's
    scope: it mirrors the model's variables)."""

    def __init__(self, model: tf.keras.Model):
        self.model = model
        self.variables = [
            tf.Variable(v, trainable=False, name=f"best/{i}") for i, v in enumerate(model.variables)
        ]

    def capture(self) -> None:
        """Copies the model's current weights (BN statistics included) in."""
        for best, current in zip(self.variables, self.model.variables):
            best.assign(current)

    def restore_into_model(self) -> None:
        for best, current in zip(self.variables, self.model.variables):
            current.assign(best)


class CheckpointState:
    """Saves a :class:`Trainer`'s state with the run's history and settings (resuming restores it).

    Only the ``chief`` keeps checkpoints (the last ``max_to_keep``). ``data_sha256``:
    the fingerprint of the data the run trains on, stored in every checkpoint ("": unknown).
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
        # Restored without the identity: older checkpoints lack it.
        self.objects = dict(
            optimizer=trainer.optimizer,
            epoch=trainer.epoch,
            history=self.history_json,
            best_weights=self.best.variables,
            model=trainer.model,
        )
        # What the run is (its settings, its data): every reader of a checkpoint checks them.
        self.identity = dict(
            settings=tf.Variable(
                json.dumps(self.config.to_dict()), dtype=tf.string, trainable=False
            ),
            data_sha256=tf.Variable(data_sha256, dtype=tf.string, trainable=False),
        )
        self.checkpoint = tf.train.Checkpoint(**self.identity, **self.objects)
        self.chief_dir = checkpoint_dir
        self.chief = chief
        self.max_to_keep = max_to_keep
        self.manager: tf.train.CheckpointManager | None = None
        self.restored: int | None = None  # the ckpt-N a resumed run restarts from
        # Set when resuming (``existing_run.restore``): repairs the state file, which
        # the manager reads when the first save creates it.
        self.before_first_save: Callable[[], None] = lambda: None

    def save(self, epoch: int, history: history_lib.History) -> None:
        """Saves ``ckpt-<epoch>``; the ``checkpoint`` state file moves to it only once
        every file is written, so a failed or killed save leaves the last good one as latest."""
        self.history_json.assign(json.dumps(history))

        def write(folder: str) -> None:
            if not self.chief:
                self.checkpoint.write(os.path.join(folder, "ckpt"))
                return
            if self.manager is None:
                self.before_first_save()
                self.manager = tf.train.CheckpointManager(
                    self.checkpoint, folder, max_to_keep=self.max_to_keep
                )
            self.manager.save(checkpoint_number=epoch)

        self._write(self.chief_dir, epoch, write)

    def save_best(self, epoch: int) -> None:
        """Writes the best weights as ``checkpoints/best/ckpt-<epoch>``, with the layout and
        identity (settings, data) of the run's own checkpoints, so whatever restores a model
        from one restores it from this. The model's weights are unchanged afterwards."""
        model = self.best.model
        current = [tf.identity(v) for v in model.variables]
        self.best.restore_into_model()
        checkpoint = tf.train.Checkpoint(model=model, **self.identity)

        def write(folder: str) -> None:
            tf.train.CheckpointManager(checkpoint, folder, max_to_keep=1).save(epoch)

        self._write(os.path.join(self.chief_dir, BEST_DIR), epoch, write)
        for variable, value in zip(model.variables, current):
            variable.assign(value)

    def _write(self, folder: str, epoch: int, write: Callable[[str], object]) -> None:
        """``write(folder)`` on the chief (:func:`saving` ``ckpt-<epoch>``). Every worker must
        take part in a save, or MultiWorkerMirroredStrategy deadlocks: the others write
        to a temporary folder they delete."""
        if self.chief:
            with saving(folder, epoch):
                write(folder)
            return
        temp = os.path.join(self.chief_dir, f".{devices.worker_id()}-tmp")
        try:
            with writing(temp):
                write(temp)
        finally:
            shutil.rmtree(temp, ignore_errors=True)


@contextlib.contextmanager
def saving(folder: str, epoch: int) -> Iterator[None]:
    """Saving ``folder/ckpt-<epoch>``: a failure removes its partial files and is one
    RunDirError line naming the cause (not TensorFlow's temporary file) and the checkpoint
    that is still the latest there."""
    try:
        yield
    except (OSError, tf.errors.OpError) as e:
        for path in glob.glob(os.path.join(glob.escape(folder), f"ckpt-{epoch}[._]*")):
            if os.path.isdir(path):  # TF's sharded save writes into ckpt-N_temp/
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.unlink(path)
        named, _ = layout.read_state(folder)
        raise RunDirError(
            f"{folder}: could not save the checkpoint of epoch {epoch} ({cause(e)}); the "
            f"latest checkpoint there is still {f'ckpt-{named}' if named is not None else 'none'}"
        ) from None
