"""Best-epoch selection: which epoch is best, when to stop, and that epoch's weights.

The decisions are pure functions of the validation-accuracy history, which
travels inside every checkpoint: a resumed run recomputes the best epoch and
the patience counter from it, so both survive a kill. The best epoch's weights
are copied into :class:`BestWeights` variables that are saved in the same
checkpoint as the history, so the two can never disagree either; at the end of
the run they are written as their own checkpoint, ``checkpoints/best/``.

"Best" is the highest validation accuracy; a later epoch must beat it strictly
(ties keep the earlier epoch), as Keras's ``EarlyStopping`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
from absl import logging

BEST_DIR = "best"


def best_epoch(val_accuracy: Sequence[float]) -> int:
    """The 1-based epoch with the highest validation accuracy (the first on ties); 0 if none."""
    if not len(val_accuracy):
        return 0
    return max(range(len(val_accuracy)), key=lambda i: (val_accuracy[i], -i)) + 1


def improved(val_accuracy: Sequence[float]) -> bool:
    """Whether the last epoch is the best so far."""
    return len(val_accuracy) > 0 and best_epoch(val_accuracy) == len(val_accuracy)


def should_stop(val_accuracy: Sequence[float], patience: int) -> bool:
    """Whether ``patience`` epochs have passed without a better validation accuracy.

    Args:
      val_accuracy: the validation accuracy of every epoch so far.
      patience: epochs without improvement to tolerate; 0 never stops.
    """
    return patience > 0 and len(val_accuracy) - best_epoch(val_accuracy) >= patience


def summary(val_accuracy: Sequence[float], patience: int, epochs: int, restore_best: bool) -> dict:
    """What ``metrics.json`` records about epoch selection."""
    best = best_epoch(val_accuracy)
    done = len(val_accuracy)
    return {
        "best_epoch": best,
        "best_val_accuracy": float(val_accuracy[best - 1]) if best else None,
        "stopped_early": done < epochs and should_stop(val_accuracy, patience),
        "early_stopping_patience": patience,
        "exported_epoch": best if restore_best else done,
    }


class BestWeights:
    """A copy of every model variable, taken at the best epoch.

    Create it inside the strategy's scope (it mirrors the model's variables).

    Args:
      model: the model being trained.
    """

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
        """Copies the best weights into the model."""
        for best, current in zip(self.variables, self.model.variables):
            current.assign(best)

    def write_checkpoint(self, folder: str, epoch: int, identity: dict[str, tf.Variable]) -> str:
        """Writes the best weights as a model checkpoint ``folder/ckpt-<epoch>``.

        The checkpoint has the same layout as the run's own checkpoints, so
        anything that restores a model from one restores it from this; it
        carries the run's ``identity`` (settings, data) as they do (its readers
        check it). The
        model's weights are unchanged afterwards.

        Returns:
          The checkpoint's path prefix.
        """
        current = [tf.identity(v) for v in self.model.variables]
        self.restore_into_model()
        checkpoint = tf.train.Checkpoint(model=self.model, **identity)
        manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=1)
        path = manager.save(checkpoint_number=epoch)
        for variable, value in zip(self.model.variables, current):
            variable.assign(value)
        logging.debug("Best epoch %d's weights in %s", epoch, path)
        return path
