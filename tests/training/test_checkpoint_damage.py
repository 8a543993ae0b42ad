"""Damaged checkpoints: fall back to the newest good one, never restart silently (issue 14)."""

import glob
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from mnist_research.config import ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.errors import RunDirError
from mnist_research.model import registry
from mnist_research.rundir import layout, restore
from mnist_research.training import existing_run
from mnist_research.training import history as history_lib
from mnist_research.training.checkpoint_state import CheckpointState
from mnist_research.training.history import Totals
from mnist_research.training.loop import Trainer

CONFIG = ExperimentConfig(
    model=ModelConfig(hidden_units=(16, 8), dropout_rates=(0.1, 0.1)),
    train=TrainConfig(batch_size=8, max_to_keep=3),
)
DATA = "ckpt-{}.data-00000-of-00001"


_TRAINERS = {}


def _trainer(config=CONFIG):
    """One trainer per config for the whole module: every restore assigns every variable."""
    if config not in _TRAINERS:
        tf.keras.utils.set_random_seed(0)
        _TRAINERS[config] = Trainer(config, tf.distribute.get_strategy())
    return _TRAINERS[config]


def _weights(trainer):
    return [v.numpy().copy() for v in trainer.model.variables]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """checkpoints/ with ckpt-1..3 (different weights each) and the weights of each epoch."""
    folder = str(tmp_path_factory.mktemp("ckpts") / "checkpoints")
    tf.keras.utils.set_random_seed(0)
    trainer = Trainer(CONFIG, tf.distribute.get_strategy())
    state = CheckpointState(trainer, folder, chief=True, max_to_keep=3)
    history, weights = history_lib.from_json("{}"), {}
    for epoch in (1, 2, 3):
        for v in trainer.model.trainable_variables:
            v.assign(v + 0.01 * epoch)
        history_lib.append(
            history,
            Totals({"loss": 1.0 * epoch, "accuracy": 1}, 2),
            Totals({"loss": 2.0, "accuracy": 1}, 2),
            0.5,
        )
        trainer.epoch.assign(epoch)
        state.save(epoch, history)
        weights[epoch] = _weights(trainer)
    return folder, weights


def _flip(path, offset):
    payload = bytearray(open(path, "rb").read())
    payload[offset % len(payload)] ^= 0x40
    open(path, "wb").write(bytes(payload))


def _truncate(path, fraction):
    payload = open(path, "rb").read()
    open(path, "wb").write(payload[: int(len(payload) * fraction)])


def _write(path, payload):
    open(path, "wb").write(payload)


# Damage to ckpt-3 (the latest): every case must fall back to ckpt-2.
LATEST_DAMAGED = {
    "data truncated": lambda d: _truncate(os.path.join(d, DATA.format(3)), 0.5),
    "data emptied": lambda d: _truncate(os.path.join(d, DATA.format(3)), 0),
    "data bit flip start": lambda d: _flip(os.path.join(d, DATA.format(3)), 3),
    "data bit flip middle": lambda d: _flip(os.path.join(d, DATA.format(3)), 1500),
    "data bit flip end": lambda d: _flip(os.path.join(d, DATA.format(3)), -3),
    "data deleted": lambda d: os.remove(os.path.join(d, DATA.format(3))),
    "index truncated": lambda d: _truncate(os.path.join(d, "ckpt-3.index"), 0.5),
    "index emptied": lambda d: _truncate(os.path.join(d, "ckpt-3.index"), 0),
    "index bit flip": lambda d: _flip(os.path.join(d, "ckpt-3.index"), 200),
    "index deleted": lambda d: os.remove(os.path.join(d, "ckpt-3.index")),
    "index replaced by garbage": lambda d: _write(os.path.join(d, "ckpt-3.index"), b"x" * 900),
    "data of another epoch": lambda d: shutil.copy(
        os.path.join(d, DATA.format(1)), os.path.join(d, DATA.format(3))
    ),
}
# Damage to the state file while ckpt-3 is good: every case must use ckpt-3.
STATE_DAMAGED = {
    "state file missing": lambda d: os.remove(os.path.join(d, "checkpoint")),
    "state file empty": lambda d: _write(os.path.join(d, "checkpoint"), b""),
    "state file garbage": lambda d: _write(os.path.join(d, "checkpoint"), b"\xff\xfe{{garbage"),
    "state file text garbage": lambda d: _write(os.path.join(d, "checkpoint"), b"hello: world"),
    "state file names a missing ckpt": lambda d: _write(
        os.path.join(d, "checkpoint"), b'model_checkpoint_path: "ckpt-9"\n'
    ),
    "state file names a directory": lambda d: _write(
        os.path.join(d, "checkpoint"), b'model_checkpoint_path: "/etc"\n'
    ),
}


def _restore_damaged_copy(saved, tmp_path, damage, caplog):
    """Restores a copy of the saved checkpoints after ``damage(folder)``."""
    folder = str(tmp_path / "checkpoints")
    shutil.copytree(saved[0], folder)
    damage(folder)
    with caplog.at_level(logging.WARNING, logger="absl"):
        return (folder, *_restore(folder))


def _restore(folder, required=False):
    trainer = _trainer()
    state = CheckpointState(trainer, folder, chief=True, max_to_keep=3)
    history, _ = existing_run.restore(state, required=required)
    return trainer, state, history


@pytest.mark.parametrize("case", sorted(LATEST_DAMAGED))
def test_damaged_latest_checkpoint_falls_back_to_the_previous(case, saved, tmp_path, caplog):
    weights = saved[1]
    _, trainer, state, history = _restore_damaged_copy(
        saved, tmp_path, LATEST_DAMAGED[case], caplog
    )
    assert state.restored == 2 and int(trainer.epoch.numpy()) == 2
    assert history["loss"] == [0.5, 1.0]
    for restored, expected in zip(_weights(trainer), weights[2]):
        np.testing.assert_array_equal(restored, expected)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ckpt-3" in warnings[0] and "using ckpt-2" in warnings[0]


@pytest.mark.parametrize("case", sorted(STATE_DAMAGED))
def test_bad_state_file_never_restarts_from_scratch(case, saved, tmp_path, caplog):
    weights = saved[1]
    folder, trainer, state, history = _restore_damaged_copy(
        saved, tmp_path, STATE_DAMAGED[case], caplog
    )
    assert state.restored == 3 and len(history["loss"]) == 3
    for restored, expected in zip(_weights(trainer), weights[3]):
        np.testing.assert_array_equal(restored, expected)
    assert any("using ckpt-3" in r.getMessage() for r in caplog.records)
    # The next save repairs the state file, and max_to_keep keeps deleting old checkpoints.
    trainer.epoch.assign(4)
    history_lib.append(
        history,
        Totals({"loss": 4.0, "accuracy": 1}, 2),
        Totals({"loss": 2.0, "accuracy": 1}, 2),
        0.5,
    )
    state.save(4, history)
    assert tf.train.latest_checkpoint(folder).endswith("ckpt-4")
    assert layout.numbers_on_disk(folder) == [4, 3, 2]


def test_after_a_fallback_the_damaged_checkpoint_is_replaced(saved, tmp_path):
    source, _ = saved
    folder = str(tmp_path / "checkpoints")
    shutil.copytree(source, folder)
    _truncate(os.path.join(folder, DATA.format(3)), 0.3)
    trainer, state, history = _restore(folder)
    trainer.epoch.assign(3)
    history_lib.append(
        history,
        Totals({"loss": 3.0, "accuracy": 1}, 2),
        Totals({"loss": 2.0, "accuracy": 1}, 2),
        0.5,
    )
    state.save(3, history)
    assert _restore(folder)[1].restored == 3  # ckpt-3 is whole again


def test_nothing_usable_is_one_error_and_nothing_is_deleted(saved, tmp_path):
    source, _ = saved
    folder = str(tmp_path / "checkpoints")
    shutil.copytree(source, folder)
    for number in (1, 2, 3):
        _flip(os.path.join(folder, DATA.format(number)), 100)
    before = sorted(os.listdir(folder))
    with pytest.raises(RunDirError) as error:
        _restore(folder)
    message = str(error.value)
    assert "no usable checkpoint" in message and "--overwrite" in message
    assert all(f"ckpt-{n}: " in message for n in (1, 2, 3)) and "\n" not in message
    assert sorted(os.listdir(folder)) == before


def test_a_run_that_records_epochs_but_has_no_checkpoint_is_refused(tmp_path):
    folder = str(tmp_path / "checkpoints")
    assert _restore(folder)[1].restored is None  # a fresh run starts from scratch
    with pytest.raises(RunDirError, match="no checkpoint, although the run records"):
        _restore(folder, required=True)


def test_checkpoint_trained_with_other_settings_is_refused_not_skipped(saved, tmp_path):
    source, _ = saved
    folder = str(tmp_path / "checkpoints")
    shutil.copytree(source, folder)
    other = ExperimentConfig(model=CONFIG.model, train=TrainConfig(batch_size=8, seed=7))
    state = CheckpointState(_trainer(other), folder, chief=True, max_to_keep=3)
    with pytest.raises(RunDirError, match=r"different settings \(train.seed: 42 -> 7\)"):
        existing_run.restore(state)


def test_checkpoint_files_in_a_folder_with_glob_characters(saved, tmp_path):
    source, _ = saved
    folder = str(tmp_path / "exp*?" / "checkpoints")  # (a run dir refuses them: check_path)
    shutil.copytree(source, folder)
    os.remove(os.path.join(folder, "checkpoint"))
    assert _restore(folder)[1].restored == 3


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"hidden_units": (32, 8)}, "model.hidden_units"),
        ({"batch_norm": False}, "model.batch_norm"),
    ],
)
def test_restore_model_checks_the_config(saved, edit, message):
    folder, _ = saved
    config = ExperimentConfig(model=ModelConfig(**{**CONFIG.to_dict()["model"], **edit}))
    model = registry.create(config.model)
    with pytest.raises(RunDirError, match=message):
        restore.restore_model(model, folder, config)


@pytest.mark.parametrize(
    "edit", [{"hidden_units": (32, 8)}, {"batch_norm": False}, {"num_classes": 4}]
)
def test_restore_model_checks_objects_and_shapes_without_stored_settings(tmp_path, edit):
    """Checkpoints written before settings were stored: assert_existing_objects_matched
    and the shapes still catch a config.json that no longer describes the model."""
    trained = registry.create(CONFIG.model)
    folder = str(tmp_path / "checkpoints")
    tf.train.CheckpointManager(tf.train.Checkpoint(model=trained), folder, 1).save(1)
    config = ExperimentConfig(model=ModelConfig(**{**CONFIG.to_dict()["model"], **edit}))
    model = registry.create(config.model)
    with pytest.raises(RunDirError, match="does not hold the model config.json describes") as e:
        restore.restore_model(model, folder, config)
    assert "another run" not in str(e.value)  # it is this run's checkpoint; config.json changed
    same = registry.create(CONFIG.model)
    assert restore.restore_model(same, folder, CONFIG).endswith("ckpt-1")


def test_verify_reads_every_tensor(saved):
    folder, _ = saved
    reader = restore.verify(os.path.join(folder, "ckpt-3"))
    assert restore.stored_settings(reader) == CONFIG
    assert not glob.glob(os.path.join(folder, "*_temp"))
