"""Finding a usable checkpoint on disk and restoring it, once it proves to be the run's.

What is on disk is the truth: TensorFlow's ``checkpoint`` state file names the
latest committed checkpoint and is used when it names a good one, but when it
is missing, unreadable or names a missing or damaged checkpoint, the newest
``ckpt-N`` whose every tensor reads back (each carries a checksum) and whose
epoch counter says N is used instead, with one warning line. When checkpoints
exist but none is usable, :func:`newest_usable` raises a :class:`RunDirError`
that says what is damaged; nothing is deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TypeVar

import tensorflow as tf
from absl import logging

from mnist_research.config import ExperimentConfig
from mnist_research.config.saved import config_from_dict, differences, resume_identity
from mnist_research.errors import RunDirError, one_line
from mnist_research.rundir.layout import numbers_on_disk, read_state

SETTINGS_KEY = "settings/.ATTRIBUTES/VARIABLE_VALUE"
HISTORY_KEY = "history/.ATTRIBUTES/VARIABLE_VALUE"
# The fingerprint of the data the checkpoint was trained on (``sources.fingerprint``).
DATA_KEY = "data_sha256/.ATTRIBUTES/VARIABLE_VALUE"
START_AFRESH = "use --overwrite to start afresh, or a new --run_dir"
# What reading a damaged checkpoint raises: a checksum or format error (OpError),
# "Read less bytes than requested" for a truncated data file (IndexError), or a
# history/settings string that does not parse (ValueError).
_DAMAGE = (tf.errors.OpError, IndexError, ValueError, KeyError, TypeError)

T = TypeVar("T")


class Damaged(Exception):
    """A checkpoint that cannot be used; restoring falls back to an older one."""


def verify(prefix: str) -> tf.train.CheckpointReader:
    """Reads back every tensor of a checkpoint (checking each checksum); returns the reader.

    Raises:
      Damaged: a file is missing, truncated or corrupt.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except _DAMAGE as e:  # the folder is named once, in the message around this one
        raise Damaged(one_line(e).replace(os.path.dirname(prefix) + os.sep, "")[:160]) from None
    return reader


def stored_settings(reader: tf.train.CheckpointReader) -> ExperimentConfig | None:
    """The settings a checkpoint was trained with (``None`` for checkpoints older than that)."""
    if not reader.has_tensor(SETTINGS_KEY):
        return None
    try:
        return config_from_dict(json.loads(reader.get_tensor(SETTINGS_KEY)))
    except ValueError as e:
        raise Damaged(f"its stored settings do not parse: {e}") from None


def identity_differences(stored: ExperimentConfig | None, config: ExperimentConfig) -> list[str]:
    """``section.setting: stored -> config`` where a checkpoint's run differs from ``config``'s.

    Every reader of a checkpoint (resuming, evaluating, reporting, predicting)
    compares the same identity; a checkpoint older than stored settings has none.
    """
    if stored is None or resume_identity(stored) == resume_identity(config):
        return []
    return differences(resume_identity(stored), resume_identity(config))


def restore_checked(
    checkpoint: tf.train.Checkpoint,
    prefix: str,
    config: ExperimentConfig,
    data_sha256: str | None,
    advice: str,
    source: str = "",
) -> tf.train.CheckpointReader:
    """Restores ``checkpoint`` from ``prefix`` once it proves to be this run's; returns its reader.

    The identity of its stored settings (when it has them; model, recipe,
    seed, data: what ``train`` checks to resume) must be ``config``'s, it must
    have been trained on the data ``data_sha256`` names (when both are known),
    every object of ``checkpoint`` must have a value in it, and every shape
    must match.

    Raises:
      Damaged: a file of it is missing, truncated or corrupt.
      RunDirError: another run's checkpoint, or one of another model than
        ``config`` (read from ``source``, when given) describes; ending with ``advice``.
    """
    reader = verify(prefix)
    diffs = identity_differences(stored_settings(reader), config)
    described = f" than {source} describes" if source else ""
    if diffs:
        raise RunDirError(
            f"{prefix} was trained with different settings{described} ({'; '.join(diffs)}); "
            f"{advice}"
        )
    has_data = data_sha256 and reader.has_tensor(DATA_KEY)
    stored = reader.get_tensor(DATA_KEY).decode("utf-8", "replace") if has_data else ""
    if stored and stored != data_sha256:
        raise RunDirError(
            f"{prefix} was trained on other data (sha256 {stored[:12]}…, the run's "
            f"{data_sha256[:12]}…); {advice}"
        )
    try:
        # expect_partial first: a refused restore's status would otherwise warn, when it is
        # garbage-collected, about the values it left unrestored (after the one error line).
        checkpoint.restore(prefix).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        # A reader's checkpoint (``source`` given) predates stored settings here: it is the
        # run's own, and config.json was edited, so ``advice`` would name the wrong cause.
        model, tail = (f"the model {source} describes", "") if source else ("this model", advice)
        raise RunDirError(
            f"{prefix} does not hold {model} ({one_line(e)[:200]})" + (f"; {tail}" if tail else "")
        ) from None
    return reader


def newest_usable(checkpoint_dir: str, load: Callable[[str, int], T]) -> tuple[T, int] | None:
    """Calls ``load(prefix, N)`` on the state file's checkpoint, then the others newest first.

    ``load`` raises :class:`Damaged` to fall back to the next one; anything else
    propagates. A fallback is logged as one warning line.

    Returns:
      What ``load`` returned and N, or ``None`` when there is no checkpoint at all.

    Raises:
      RunDirError: checkpoints exist (or the state file names one) but none is usable.
    """
    named, state_problem = read_state(checkpoint_dir)
    order = numbers_on_disk(checkpoint_dir)
    if named is not None:
        order = [named] + [n for n in order if n != named]
    problems = []
    for number in order:
        prefix = os.path.join(checkpoint_dir, f"ckpt-{number}")
        try:
            result = load(prefix, number)
        except Damaged as e:
            problems.append(f"ckpt-{number}: {e}")
            continue
        notes = problems + ([f"the state file {state_problem}"] if state_problem and order else [])
        if notes:
            logging.warning("%s: %s; using ckpt-%d", checkpoint_dir, "; ".join(notes), number)
        return result, number
    if not problems:
        return None
    raise RunDirError(
        f"{checkpoint_dir}: no usable checkpoint ({'; '.join(problems)}); "
        f"nothing was changed; {START_AFRESH}"
    )


def restore_model(
    model: tf.keras.Model,
    checkpoint_dir: str,
    config: ExperimentConfig,
    data_sha256: str | None = None,
) -> str:
    """Restores ``model``'s weights from the newest usable checkpoint of this run; returns its path.

    Raises:
      RunDirError: no usable checkpoint, or one of another run or model (see
        :func:`restore_checked`).
    """

    def load(prefix: str, number: int) -> str:
        checkpoint = tf.train.Checkpoint(model=model)
        restore_checked(
            checkpoint, prefix, config, data_sha256, "another run's checkpoint", "config.json"
        )
        return prefix

    found = newest_usable(checkpoint_dir, load)
    if found is None:
        raise RunDirError(f"{checkpoint_dir}: no checkpoint to load")
    return found[0]
