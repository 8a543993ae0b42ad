"""Damaged run-dir files read back as one clear error or are cut at their last good record:
config.json, metrics.json and TensorBoard event files (issue 14)."""

import json
import os

import pytest
import tensorflow as tf

from mnist_research import files
from mnist_research.config import ExperimentConfig
from mnist_research.config.registry import HISTORY_KEYS
from mnist_research.errors import RunDirError
from mnist_research.rundir import records
from mnist_research.rundir.records import DamagedFileError
from mnist_research.training import existing_run

GOOD_CONFIG = ExperimentConfig().to_dict()


def _with(path, value):
    """GOOD_CONFIG with one nested key ("train.seed") replaced."""
    document = json.loads(json.dumps(GOOD_CONFIG))
    *parents, last = path.split(".")
    node = document
    for key in parents:
        node = node[key]
    node[last] = value
    return document


DAMAGED_CONFIGS = {
    "garbage": b"\x00\x01garbage{",
    "empty": b"",
    "truncated": json.dumps(GOOD_CONFIG).encode()[:100],
    "not UTF-8": b'{"experiment": "\xff\xfe"}',
    "a list": b"[1, 2]",
    "a string": b'"baseline"',
    "null": b"null",
    "an empty object": b"{}",
    "a section missing": json.dumps(
        {k: v for k, v in GOOD_CONFIG.items() if k != "train"}
    ).encode(),
    "a section of the wrong type": json.dumps(_with("model", [1, 2])).encode(),
    "an unknown field": json.dumps(_with("train.speed", 3)).encode(),
    "a negative batch size": json.dumps(_with("train.batch_size", -5)).encode(),
    "a float epoch count": json.dumps(_with("train.epochs", 2.5)).encode(),
    "a string learning rate": json.dumps(_with("train.learning_rate", "fast")).encode(),
    "widths that are not numbers": json.dumps(_with("model.hidden_units", "abc")).encode(),
    "NaN dropout": json.dumps(_with("model.dropout_rates", [0.1, float("nan"), 0.2])).encode(),
    "an unknown strategy": json.dumps(_with("distribute.strategy", "warp")).encode(),
    "a seed out of range": json.dumps(_with("train.seed", -1)).encode(),
    "nested too deeply": b"[" * 100000 + b"]" * 100000,
}


@pytest.mark.parametrize("case", sorted(DAMAGED_CONFIGS))
def test_damaged_config_json_is_one_clear_error(case, tmp_path):
    (tmp_path / "config.json").write_bytes(DAMAGED_CONFIGS[case])
    with pytest.raises(DamagedFileError) as error:
        records.load_config(str(tmp_path))
    message = str(error.value)
    assert message.startswith(f"{tmp_path}/config.json: damaged (") and "\n" not in message
    # train: a damaged config.json defers the settings check to the checkpoint.
    assert existing_run.check_settings(str(tmp_path), ExperimentConfig()) is not None


def test_config_with_other_settings_is_refused_with_the_differences(tmp_path):
    files.write_json(str(tmp_path / "config.json"), _with("train.seed", 7))
    with pytest.raises(RunDirError, match=r"different settings \(train.seed: 7 -> 42\)"):
        existing_run.check_settings(str(tmp_path), ExperimentConfig())


def _finished(**changes):
    history = {key: [0.5, 0.6] for key in HISTORY_KEYS}
    return {
        "finished": True,
        "epochs_completed": 2,
        "history": history,
        "test_accuracy": 0.9,
        "test_loss": 0.3,
        **changes,
    }


DAMAGED_METRICS = {
    "garbage": b"\x00garbage",
    "empty": b"",
    "truncated": json.dumps(_finished()).encode()[:50],
    "a list": b"[]",
    "a number": b"3",
    "finished is a string": json.dumps(_finished(finished="yes")).encode(),
    "epochs missing": json.dumps(
        {k: v for k, v in _finished().items() if k != "epochs_completed"}
    ).encode(),
    "epochs a string": json.dumps(_finished(epochs_completed="2")).encode(),
    "epochs zero": json.dumps(_finished(epochs_completed=0)).encode(),
    "history missing": json.dumps(_finished(history=None)).encode(),
    "history too short": json.dumps(_finished(epochs_completed=3)).encode(),
    "history with a string": json.dumps(
        _finished(history={**_finished()["history"], "loss": [0.5, "x"]})
    ).encode(),
    "test accuracy missing": json.dumps(
        {k: v for k, v in _finished().items() if k != "test_accuracy"}
    ).encode(),
    "nested too deeply": b'{"a":' * 50000 + b"1" + b"}" * 50000,
}


@pytest.mark.parametrize("case", sorted(DAMAGED_METRICS))
def test_damaged_metrics_json_is_one_clear_error(case, tmp_path):
    (tmp_path / "metrics.json").write_bytes(DAMAGED_METRICS[case])
    with pytest.raises(DamagedFileError) as error:
        records.finished_metrics(str(tmp_path))
    message = str(error.value)
    assert message.startswith(f"{tmp_path}/metrics.json: damaged (") and "\n" not in message
    assert "rerun the train command" in message


def test_sound_metrics_read_back(tmp_path):
    files.write_json(str(tmp_path / "metrics.json"), _finished())
    assert records.finished_metrics(str(tmp_path))["epochs_completed"] == 2
    files.write_json(str(tmp_path / "metrics.json"), {"finished": False, "history": {}})
    assert records.finished_metrics(str(tmp_path)) is None


# --------------------------------------------------------------------------- event files


def _event_file(folder, steps, tag="epoch/loss"):
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        for step in steps:
            tf.summary.scalar(tag, float(step), step=step)
    writer.close()
    (path,) = [os.path.join(folder, n) for n in os.listdir(folder) if "tfevents" in n]
    return path


def _steps(path):
    from tensorboard.compat.proto import event_pb2

    return [
        event_pb2.Event.FromString(r.numpy()).step
        for r in tf.data.TFRecordDataset(path)
        if event_pb2.Event.FromString(r.numpy()).summary.value
    ]


def _cut_last_record(path):
    payload = open(path, "rb").read()
    open(path, "wb").write(payload[:-7])


def _flip_in_last_record(path):
    payload = bytearray(open(path, "rb").read())
    payload[-20] ^= 0x10
    open(path, "wb").write(bytes(payload))


def _append_garbage(path):
    with open(path, "ab") as f:
        f.write(b"\x13\x00\x00\x00\x00\x00\x00\x00garbage")


@pytest.mark.parametrize(
    "damage, dropped", [(_cut_last_record, 1), (_flip_in_last_record, 1), (_append_garbage, 2)]
)
def test_damaged_event_file_is_cut_at_its_last_good_record(damage, dropped, tmp_path, caplog):
    run = tmp_path / "exp*?"  # a glob pattern that matches the sibling below, if unescaped
    sibling = tmp_path / "exp12"
    path = _event_file(run / "validation", [1, 2, 3, 4, 5])
    other = _event_file(sibling / "validation", [1, 2, 3, 4, 5])
    damage(path)
    # Step 5 is the damaged record (or good, before the garbage); steps 4-5 are after epoch 3.
    assert existing_run.prune_after(str(run), epoch=3, step=0) == dropped
    assert _steps(path) == [1, 2, 3]
    assert _steps(other) == [1, 2, 3, 4, 5]  # another run's events are never touched
    assert any("good records" in r.getMessage() for r in caplog.records)
    assert existing_run.prune_after(str(run), epoch=3, step=0) == 0  # sound again


def _declares(length):
    """A record header declaring ``length`` bytes, its length checksum valid, and no data."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    def damage(path):
        header = length.to_bytes(8, "little")
        with open(path, "ab") as f:
            f.write(header + masked_crc32c(header).to_bytes(4, "little") + b"x" * 64)

    return damage


_PRUNE = """
import resource, sys
from mnist_research.training import existing_run
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # less memory than 8 GiB
for run in sys.argv[1:]:
    print(existing_run.prune_after(run, epoch=2, step=0), flush=True)
"""

_LENGTHS = [8 << 30, 1 << 63, 65]


def test_an_event_record_declaring_more_than_the_file_holds_is_cut_not_read(tmp_path):
    """In a process of its own: TensorFlow's reader, given such a record, crashes the process."""
    import subprocess
    import sys

    from tests.helpers import REPO

    runs, paths = [], []
    for length in _LENGTHS:
        runs.append(tmp_path / f"run{length}")
        paths.append(_event_file(runs[-1] / "train", [1, 2, 3]))
        _declares(length)(paths[-1])
    result = subprocess.run(
        [sys.executable, "-c", _PRUNE, *map(str, runs)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Step 3 of each file (the hostile record was never an event).
    assert result.stdout.split() == ["1"] * len(_LENGTHS)
    for length, path in zip(_LENGTHS, paths):
        assert f"record 5 declares {length:,} bytes of data, more than the" in result.stderr
        assert _steps(path) == [1, 2]
    # The file version record and 3 steps, in each file.
    assert result.stderr.count("keeping its 4 good records") == len(_LENGTHS)


def test_an_event_file_name_that_is_not_a_file_is_left_alone(tmp_path, caplog):
    run = tmp_path / "run"
    path = _event_file(run / "train", [1, 2, 3])
    odd = run / "validation" / "events.out.tfevents.1.host.2.v2"
    odd.mkdir(parents=True)
    assert existing_run.prune_after(str(run), epoch=2, step=0) == 1
    assert _steps(path) == [1, 2] and odd.is_dir() and not list(odd.iterdir())
    assert sorted(p.name for p in (run / "validation").iterdir()) == [odd.name]  # no .pruning
    assert any("not a regular file" in r.getMessage() for r in caplog.records)
