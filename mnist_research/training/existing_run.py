"""A run dir that already holds something: the checks, restoring and tidying a rerun needs.

A run into a new or empty folder needs none of this: ``runner`` imports this
module only for a run dir that is not empty (resuming, finishing again,
``--overwrite``, repairing what a killed run left), and ``train --resume``
to find the run to continue.

The run's progress is its checkpoints (``metrics.json`` is written from them);
``metrics.json`` tells whether the run is already done.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
from absl import logging
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2

from mnist_research import files, tfrecords
from mnist_research.config import ExperimentConfig
from mnist_research.config.saved import differences, resume_identity
from mnist_research.errors import MnistResearchError, RunDirError, one_line
from mnist_research.rundir import existing, layout, records
from mnist_research.rundir.records import DamagedFileError
from mnist_research.rundir.restore import (
    HISTORY_KEY,
    SETTINGS_KEY,
    START_AFRESH,
    Damaged,
    newest_usable,
    restore_checked,
)
from mnist_research.training import history as history_lib
from mnist_research.training.checkpoint_state import CheckpointState
from mnist_research.training.loop import Trainer
from mnist_research.training.runner import EndOfRunAction


def check(
    run_dir: str,
    config: ExperimentConfig,
    overwrite: bool,
    actions: Sequence[EndOfRunAction],
) -> tuple[dict[str, Any] | None, DamagedFileError | None]:
    """Read-only checks of a run dir that is not empty, before the data is read.

    Returns:
      The final metrics when nothing is left to do (else ``None``), and why
      ``config.json`` is damaged (else ``None``; the checkpoint's settings are
      then checked instead, by :func:`resume`).

    Raises:
      RunDirError: ``--overwrite`` of a directory that is not a run dir; a run
        with other settings, or more epochs than ``config``.
    """
    if overwrite:
        if existing.ownership(run_dir) == "foreign":
            existing.check_ours(run_dir)  # refuses, naming what a run dir holds
        existing.check_overwritable(run_dir)
        return None, None
    existing.check_ours(run_dir)
    damaged_config = check_settings(run_dir, config)
    # The run's progress is its checkpoints: the newest on disk bounds what is restored.
    folder = os.path.join(run_dir, layout.CHECKPOINT_DIR)
    checkpoints = layout.numbers_on_disk(folder)
    if checkpoints and checkpoints[0] > config.train.epochs:
        raise RunDirError(
            f"{run_dir} has completed {checkpoints[0]} epochs, more than "
            f"--epochs={config.train.epochs}; pass --epochs={checkpoints[0]} (or more to "
            f"extend the run), or use a new --run_dir"
        )
    try:
        finished = records.finished_metrics(run_dir)
    except DamagedFileError as e:
        logging.warning("%s: damaged (%s); it is rebuilt from the checkpoint", e.path, e.reason)
        return None, damaged_config
    done = (finished or {}).get("epochs_completed", 0)
    complete = done == config.train.epochs or (finished or {}).get("stopped_early")
    if finished is None or not complete or done > config.train.epochs or damaged_config:
        return None, damaged_config
    damaged_outputs = outputs_problem(run_dir, actions)
    if damaged_outputs:
        logging.warning("%s", damaged_outputs)
        return None, damaged_config
    # A run that stopped early stays stopped: more epochs would change nothing.
    stopped = finished.get("stopped_early")
    logging.info(
        "%s is complete (%s); nothing to do. Use a new --run_dir or --overwrite to train again%s.",
        run_dir,
        f"it stopped early after {done} epochs" if stopped else f"{done} epochs",
        "" if stopped else ", or a larger --epochs to extend it",
    )
    return finished, None


def outputs_problem(run_dir: str, actions: Sequence[EndOfRunAction]) -> str | None:
    """The first unusable output of a finished run, as a log line, or ``None``."""
    for action in actions:
        problem = action.problem(run_dir) if action.problem is not None else None
        if problem:
            return f"{problem}; {action.name} again from the checkpoint"
    return None


def check_settings(run_dir: str, config: ExperimentConfig) -> DamagedFileError | None:
    """Refuses a run dir that holds a run with a different model or recipe.

    Returns:
      ``None``, or the error when ``config.json`` is damaged: the caller then
      checks the settings stored in the checkpoint instead.

    Raises:
      RunDirError: the saved settings differ from ``config`` (named in the message).
    """
    try:
        saved = records.load_config(run_dir)
    except DamagedFileError as e:
        return e
    if saved is not None and resume_identity(saved) != resume_identity(config):
        diffs = differences(resume_identity(saved), resume_identity(config))
        raise RunDirError(
            f"{run_dir} holds a run with different settings ({'; '.join(diffs)}); "
            f"use a new --run_dir or --overwrite"
        )
    return None


# What a resumed run must share with the epochs ``metrics.json`` records besides its
# settings: the data it read, and the placement that decides the dropout masks (each
# replica draws its own stream, so another replica count trains another experiment).
SAME_RUN_KEYS = {
    "data_sha256": "the data read (sha256 of the uint8 train/validation arrays after the split)",
    "strategy": "--strategy",
    "num_replicas": "the replica count",
}


def check_same_run(run_dir: str, info: dict[str, Any]) -> None:
    """Refuses to resume a run whose recorded data or replica placement differ from ``info``.

    ``metrics.json`` (written with every checkpoint) records them. A run
    recorded before the data fingerprint existed has none: it is resumed with
    one warning line (its data cannot be checked) and records it from then on.
    A damaged or missing ``metrics.json`` checks nothing (nothing trained, or
    rebuilt from the checkpoint).

    Raises:
      RunDirError: naming each difference.
    """
    recorded = records.recorded(run_dir)
    if not recorded.get("epochs_completed"):
        return
    diffs = [
        f"{what}: {recorded[key]} -> {info[key]}"
        for key, what in SAME_RUN_KEYS.items()
        if key in recorded and key in info and recorded[key] != info[key]
    ]
    if diffs:
        raise RunDirError(
            f"{run_dir} was trained with other {'; '.join(diffs)}; resuming would "
            f"train another experiment under its name. Use the run's own data and "
            f"placement, a new --run_dir, or --overwrite"
        )
    if "data_sha256" not in recorded and "data_sha256" in info:
        logging.warning(
            "%s records no data fingerprint (written before they existed): the data "
            "of this resume cannot be checked against its earlier epochs",
            run_dir,
        )


def resume(
    run_dir: str,
    trainer: Trainer,
    state: CheckpointState,
    chief: bool,
    overwrite: bool,
    damaged_config: DamagedFileError | None,
) -> history_lib.History:
    """Restores the newest usable checkpoint (after ``--overwrite``'s deletion, on the
    chief); the chief then tidies what a killed run left. Called holding the lock.

    Returns:
      The restored history (empty when there is no checkpoint).

    Raises:
      RunDirError: checkpoints exist (or ``metrics.json`` records epochs) but
        none is usable, or one was trained with other settings; ``config.json``
        is damaged and the checkpoint cannot be checked against this command.
    """
    if overwrite and chief:
        logging.info("--overwrite: deleting the contents of %s", run_dir)
        existing.clear(run_dir)
    history, settings_checked = restore(state, required=records.records_progress(run_dir))
    done = int(trainer.epoch.numpy())
    if damaged_config is not None:
        if done and not settings_checked:
            raise RunDirError(
                f"{damaged_config}, and ckpt-{done} predates stored settings, so "
                f"this command cannot be checked against the run; use "
                f"--overwrite to start afresh, or a new --run_dir"
            )
        logging.warning(
            "%s; rewritten from this command's settings%s",
            damaged_config,
            f" (they match ckpt-{done})" if done else "",
        )
    if chief:
        for path in existing.remove_stale_temporaries(run_dir):
            logging.info("Removed %s, left half-written by an interrupted run", path)
        dropped = prune_after(run_dir, done, trainer.step)
        if dropped:
            logging.info("Dropped %d TensorBoard events written after the last checkpoint", dropped)
    return history


def restore(state: CheckpointState, required: bool = False) -> tuple[history_lib.History, bool]:
    """Restores the newest usable checkpoint into ``state``, if any.

    Args:
      required: the run dir records finished epochs, so a checkpoint must exist.

    Returns:
      Its history, and whether it held the settings it was trained with.

    Raises:
      RunDirError: no checkpoint is usable although one exists (or is
        ``required``), or one was trained with different settings.
    """
    restorer = tf.train.Checkpoint(**state.objects)

    def load(prefix: str, number: int) -> tuple[history_lib.History, bool]:
        reader = restore_checked(restorer, prefix, state.config, state.data_sha256, START_AFRESH)
        try:
            history = history_lib.from_json(reader.get_tensor(HISTORY_KEY).decode("utf-8"))
        except (ValueError, TypeError, AttributeError) as e:
            raise Damaged(f"its history does not parse ({e})") from None
        epoch = int(state.epoch.numpy())
        if epoch != number or len(history["loss"]) != epoch:
            raise Damaged(f"it holds epoch {epoch} with {len(history['loss'])} history entries")
        return history, reader.has_tensor(SETTINGS_KEY)

    found = newest_usable(state.chief_dir, load)
    restored = found[1] if found else None
    state.before_first_save = lambda: _repair_state(state.chief_dir, restored)
    if found is None:
        if required:
            raise RunDirError(
                f"{state.chief_dir}: no checkpoint, although the run records "
                f"finished epochs; nothing was changed; {START_AFRESH}"
            )
        return history_lib.from_json("{}"), False
    (history, settings_checked), state.restored = found
    logging.info("Restored %s", os.path.join(state.chief_dir, f"ckpt-{state.restored}"))
    return history, settings_checked


def _repair_state(folder: str, restored: int | None) -> None:
    """Rewrites a state file that does not name the ``restored`` checkpoint.

    TensorFlow's manager reads the state file to know which checkpoints to
    delete; a missing or garbage one would leave old checkpoints on disk forever.
    """
    named, _ = layout.read_state(folder)
    path = os.path.join(folder, layout.STATE_FILE)
    if named == restored:
        return
    if restored is None:
        if os.path.exists(path):
            os.unlink(path)  # names nothing usable; the first save writes a new one
        return
    kept = sorted(n for n in layout.numbers_on_disk(folder) if n <= restored)
    lines = [f'model_checkpoint_path: "ckpt-{restored}"']
    lines += [f'all_model_checkpoint_paths: "ckpt-{n}"' for n in kept]
    # The manager deletes only checkpoints stamped after last_preserved_timestamp (0).
    lines += ["all_model_checkpoint_timestamps: 1" for _ in kept]
    files.atomic_write_text(path, "\n".join(lines) + "\n")
    logging.info("Rewrote %s to name ckpt-%d", path, restored)


# The folders the run's writers write ("": the run dir, the HParams session's).
_EVENT_FOLDERS = ("train", "validation", "")


def prune_after(run_dir: str, epoch: int, step: int) -> int:
    """Drops events written after the checkpoint a resumed run restarts from.

    A run killed mid-epoch leaves summaries for steps (``step/*`` tags, keyed
    by optimizer step) and epochs (every other tag: scalars, histograms, images,
    keyed by epoch) that the resumed run will write again; without
    pruning, TensorBoard would show those steps twice and the curve would go
    backwards. Each event file that holds such events is rewritten (to a
    temporary file, then renamed) without them. A file with a truncated or
    corrupt record (a bad checksum) is cut at its last good record, with one
    warning line, instead of failing the resume. Before the first checkpoint
    (``epoch`` 0) no event is kept: the rerun writes them all again (the
    flags text and the HParams session among them).

    Returns:
      The number of events dropped.
    """
    dropped = 0
    # Only the folders the run's writers write: event files anywhere else are not its own.
    paths = [
        path
        for folder in _EVENT_FOLDERS
        for path in glob.glob(os.path.join(glob.escape(run_dir), folder, "events.out.tfevents.*"))
    ]
    if epoch == 0:
        epoch = step = -1
    for path in sorted(paths):
        if not os.path.isfile(path) or os.path.islink(path):
            logging.warning(
                "%s: not a regular file, so not an event file of this run; left "
                "as it is (TensorBoard ignores it once you remove it)",
                path,
            )
            continue
        records, damage = _read_records(path)
        kept = [r for r in records if not _after(r, epoch, step)]
        if damage:
            logging.warning("%s: %s; keeping its %d good records", path, damage, len(records))
        if damage or len(kept) < len(records):
            temp = path + ".pruning"
            try:
                with tf.io.TFRecordWriter(temp) as writer:
                    for record in kept:
                        writer.write(record)
                os.replace(temp, path)
            finally:
                if os.path.lexists(temp):
                    os.unlink(temp)
            dropped += len(records) - len(kept)
    return dropped


def _read_records(path: str) -> tuple[list[bytes], str | None]:
    """The records of an event file up to the first damaged one, and what the damage is."""
    records = []
    whole, damage = tfrecords.whole_records(path)  # a length beyond the file is never read
    try:
        for record in tf.data.TFRecordDataset(path).take(whole):
            records.append(record.numpy())
            event_pb2.Event.FromString(records[-1])
    except tf.errors.OpError as e:  # e.g. "DataLossError: corrupted record at 418"
        return records, one_line(e)[:160]
    except DecodeError:
        return records[:-1], f"record {len(records)} is not an event"
    return records, damage


def _keyed_by_step(value) -> bool:
    """``step/*`` scalars and the graph (``trace_export`` at an optimizer step) are keyed
    by optimizer step; everything else by epoch."""
    return value.tag.startswith("step/") or value.metadata.plugin_data.plugin_name.startswith(
        "graph"
    )


def _after(record: bytes, epoch: int, step: int) -> bool:
    event = event_pb2.Event.FromString(record)
    return any(event.step > (step if _keyed_by_step(v) else epoch) for v in event.summary.value)


def _finished_or_damaged(run_dir: str) -> bool:
    """--resume skips both: a damaged run is resumed only when named with --run_dir."""
    try:
        return records.finished_metrics(run_dir) is not None
    except MnistResearchError:
        return True


def latest_unfinished(logdir: str, config: ExperimentConfig) -> str | None:
    """The most recently active unfinished run of ``config``'s experiment under ``logdir``.

    A candidate is a direct sub-directory holding a ``config.json`` with the
    same experiment name and the same model and recipe
    (``config.saved.resume_identity``) that has not finished; the newest is
    the one whose ``config.json``, ``metrics.json`` or checkpoints changed last.

    Returns:
      Its path, or ``None`` when there is none.
    """
    candidates = []
    for path in glob.glob(os.path.join(glob.escape(logdir), "*", layout.CONFIG_FILE)):
        run_dir = os.path.dirname(path)
        try:
            saved = records.load_config(run_dir)
        except MnistResearchError:
            continue  # damaged: resuming it needs an explicit --run_dir
        if (
            saved is None
            or saved.experiment != config.experiment
            or resume_identity(saved) != resume_identity(config)
            or _finished_or_damaged(run_dir)
        ):
            continue
        touched = [
            os.path.getmtime(p)
            for p in (
                path,
                os.path.join(run_dir, layout.METRICS_FILE),
                os.path.join(run_dir, layout.CHECKPOINT_DIR),
            )
            if os.path.exists(p)
        ]
        candidates.append((max(touched), run_dir))
    return max(candidates)[1] if candidates else None
