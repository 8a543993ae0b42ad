"""Issue 35 class 8: a failed write names the real path and the cause, in one line, and
leaves nothing half-written; a rerun after a kill before the first checkpoint writes its
step-0 events once."""

import os

import pytest
import tensorflow as tf

from mnist_research import files
from mnist_research.errors import run_guarded
from tests.helpers import tmpfs


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs."""
    with tmpfs(tmp_path, "1m") as mount:
        yield mount


def _error_line(capsys, call):
    assert run_guarded(call) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    return err


def test_a_file_write_names_its_own_path_not_the_temporary_one(tmp_path, small_disk, capsys):
    folder_in_place = tmp_path / "metrics.json"
    folder_in_place.mkdir()
    line = _error_line(capsys, lambda: files.write_json(str(folder_in_place), {"a": 1}))
    assert line.startswith(f"error: {folder_in_place}: ") and ".tmp-" not in line
    full = small_disk / "reports" / "curves.png"
    line = _error_line(capsys, lambda: files.atomic_write_bytes(str(full), b"x" * (2 << 20)))
    assert line == f"error: {full}: No space left on device\n"
    assert os.listdir(small_disk / "reports") == [] and os.listdir(tmp_path) != []


def test_a_best_epoch_checkpoint_on_a_full_disk_is_one_line_and_leaves_no_temp(small_disk, capsys):
    from mnist_research.training import checkpoint_state

    folder = small_disk / "checkpoints" / "best"
    weights = tf.Variable(tf.zeros([600_000]))  # 2.4 MB
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(weights=weights), str(folder), 1)

    def save():
        with checkpoint_state.saving(str(folder), 2):
            manager.save(checkpoint_number=2)

    line = _error_line(capsys, save)
    assert line == (
        f"error: {folder}: could not save the checkpoint of epoch 2 (No space left on "
        f"device); the latest checkpoint there is still none\n"
    )
    assert os.listdir(folder) == []  # no ckpt-2_temp/


def test_an_export_on_a_full_disk_names_the_export(small_disk, capsys):
    from mnist_research.config import ModelConfig
    from mnist_research.inference import export
    from mnist_research.model import registry

    model = registry.create(ModelConfig(hidden_units=(1024,), dropout_rates=(0.0,)))
    model(tf.zeros((1, 784)))
    target = small_disk / "run" / "export"
    line = _error_line(capsys, lambda: export.export_saved_model(model, str(target)))
    assert line == f"error: {target}: cannot write (No space left on device)\n"
    assert os.listdir(small_disk / "run") == []  # its temporary folder removed


def _value_events(folder):
    from tensorboard.compat.proto import event_pb2

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            events += [value.tag for value in event.summary.value]
    return events


def test_events_of_an_attempt_killed_before_its_first_checkpoint_are_not_kept(tmp_path):
    """The rerun writes the flags text and the HParams session again: each once."""
    import collections

    from mnist_research.config import ExperimentConfig
    from mnist_research.training import existing_run
    from mnist_research.training import summaries as summaries_lib

    run = tmp_path / "run"
    writer = summaries_lib.Summaries(str(run))  # the killed attempt
    writer.start(ExperimentConfig(), collections.defaultdict(lambda: "cpu"), "--seed=1")
    writer.scalars(writer.train, 3, {"step/loss": 1.0})
    writer.close()
    written = _value_events(run) + _value_events(run / "train")
    assert "config/flags" in written and len(written) >= 4
    assert existing_run.prune_after(str(run), 0, 0) == len(written)
    assert _value_events(run) == _value_events(run / "train") == []
