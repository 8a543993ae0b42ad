"""Training, evaluating and reporting on damaged run dirs, in process on tiny data (issue 14):
no traceback, no silent restart, no deleted user file."""

import hashlib
import json
import logging
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from mnist_research import run_outputs
from mnist_research.analysis import run_analysis
from mnist_research.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.errors import MnistResearchError, RunDirError, run_guarded
from mnist_research.inference import finished_run
from mnist_research.rundir.lock import RunDirLock
from mnist_research.training import runner

# The tests on the run trained below (in process, with its export and reports: a few
# seconds each, 25 s in all on 2 cores) are slow; those refused before anything is written
# are not.
slow = pytest.mark.slow


def _config(npz_dir, **train):
    # The plain step (no XLA compilation: about half of each tiny run's training time):
    # what these tests check is the run dir; the XLA step's own tests are in test_trainer.
    return ExperimentConfig(
        experiment="tiny",
        data=DataConfig(data_dir=npz_dir),
        model=ModelConfig(hidden_units=(32, 16), dropout_rates=(0.1, 0.1)),
        train=TrainConfig(
            **{
                "epochs": 2,
                "batch_size": 32,
                "steps_per_loop": 4,
                "histograms": False,
                "jit_compile": False,
                **train,
            }
        ),
    )


def _train(config, run_dir, **kwargs):
    return runner.train_and_evaluate(
        config,
        str(run_dir),
        verbose=False,
        strategy=tf.distribute.get_strategy(),
        actions=run_outputs.end_of_run_actions(),
        **kwargs,
    )


@pytest.fixture(scope="module")
def tiny_run(npz_dir, tmp_path_factory):
    """A finished 2-epoch run of a small model, trained in this process."""
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    metrics = _train(_config(npz_dir), run_dir)
    return run_dir, metrics


@pytest.fixture
def copy(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    return run_dir


def _messages(caplog):
    return [r.getMessage() for r in caplog.records]


def _digest(folder):
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@slow
def test_lost_state_file_then_extended_resumes_instead_of_restarting(
    npz_dir, tiny_run, copy, caplog
):
    os.remove(copy / "checkpoints" / "checkpoint")
    with caplog.at_level(logging.INFO, logger="absl"):
        metrics = _train(_config(npz_dir, epochs=3), copy)
    messages = _messages(caplog)
    assert any("state file is missing; using ckpt-2" in m for m in messages)
    assert not any(m.startswith("epoch 1/3") or m.startswith("epoch 2/3") for m in messages)
    assert any(m.startswith("epoch 3/3") for m in messages)
    original = tiny_run[1]["history"]
    assert metrics["epochs_completed"] == 3
    assert metrics["history"]["val_loss"][:2] == original["val_loss"]


@slow
def test_damaged_latest_checkpoint_then_extended_falls_back_one_epoch(
    npz_dir, tiny_run, copy, caplog
):
    data = copy / "checkpoints" / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    with caplog.at_level(logging.INFO, logger="absl"):
        metrics = _train(_config(npz_dir, epochs=3), copy)
    messages = _messages(caplog)
    assert any("ckpt-2: " in m and "using ckpt-1" in m for m in messages)
    assert any(m.startswith("epoch 2/3") for m in messages)
    assert not any(m.startswith("epoch 1/3") for m in messages)
    original = tiny_run[1]["history"]
    assert metrics["history"]["val_loss"][0] == original["val_loss"][0]
    # Epoch 2 is trained again from the same state: the same numbers as the first time.
    assert metrics["history"]["val_loss"][1] == pytest.approx(original["val_loss"][1], rel=1e-4)


@slow
def test_damaged_metrics_json_is_rebuilt_without_retraining(npz_dir, tiny_run, copy, caplog):
    # Valid JSON without what a finished run records (garbage, lists...: test_run_dir_safety).
    (copy / "metrics.json").write_text('{"finished": true}')
    with caplog.at_level(logging.INFO, logger="absl"):
        metrics = _train(_config(npz_dir), copy)
    messages = _messages(caplog)
    assert any(
        "metrics.json: damaged" in m and "rebuilt from the checkpoint" in m for m in messages
    )
    assert not any(m.startswith("epoch ") for m in messages)  # nothing retrained
    assert metrics["test_accuracy"] == tiny_run[1]["test_accuracy"]
    assert json.loads((copy / "metrics.json").read_text())["finished"] is True


@slow
def test_damaged_config_json_is_checked_against_the_checkpoint_and_rewritten(npz_dir, copy, caplog):
    (copy / "config.json").write_text("{}")
    with pytest.raises(
        RunDirError,
        match=r"ckpt-2 was trained with different settings "
        r"\(train.seed: 42 -> 7\)",
    ):
        _train(_config(npz_dir, seed=7), copy)
    assert (copy / "config.json").read_text() == "{}"  # refused: nothing written
    with caplog.at_level(logging.INFO, logger="absl"):
        _train(_config(npz_dir), copy)
    assert any("config.json: damaged" in m and "match ckpt-2" in m for m in _messages(caplog))
    assert json.loads((copy / "config.json").read_text())["train"]["seed"] == 42


@slow
def test_nothing_usable_is_one_error_and_nothing_is_touched(npz_dir, copy):
    for name in ("ckpt-1", "ckpt-2"):
        path = copy / "checkpoints" / f"{name}.index"
        path.write_bytes(path.read_bytes()[:100])
    os.remove(copy / "checkpoints" / "checkpoint")
    before = _digest(copy)
    with pytest.raises(RunDirError) as error:
        _train(_config(npz_dir, epochs=3), copy)
    message = str(error.value)
    assert "no usable checkpoint (ckpt-2: " in message and "ckpt-1: " in message
    assert "--overwrite" in message and "nothing was changed" in message
    assert _digest(copy) == before


def _too_large(npz_dir, run_dir):
    _train(
        ExperimentConfig(
            experiment="tiny",
            data=DataConfig(data_dir=npz_dir),
            model=ModelConfig(hidden_units=(1_000_000,) * 3, dropout_rates=(0.1,) * 3),
            train=TrainConfig(epochs=1, batch_size=32),
        ),
        run_dir,
    )


REFUSED = {
    "batch larger than the data": (
        lambda d, r: _train(_config(d, batch_size=4096), r),
        "larger than the 512",
    ),
    "model too large for memory": (_too_large, "2,000,806,000,010 parameters, about"),
    "glob characters in the run dir": (
        lambda d, r: _train(_config(d), r.parent / "exp[1]*"),
        "cannot contain * [ ]",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_settings_write_nothing(npz_dir, tmp_path, case):
    refuse, message = REFUSED[case]
    run_dir = tmp_path / "new"
    with pytest.raises(MnistResearchError, match=re.escape(message)):
        refuse(npz_dir, run_dir)
    assert os.listdir(tmp_path) == []  # not even an empty run dir


@slow
def test_refusals_on_an_existing_run_dir_change_nothing(npz_dir, copy):
    before = _digest(copy)
    with pytest.raises(RunDirError, match="has completed 2 epochs, more than --epochs=1"):
        _train(_config(npz_dir, epochs=1), copy)
    with pytest.raises(MnistResearchError, match="larger than the 512"):
        _train(_config(npz_dir, batch_size=4096), copy, overwrite=True)
    with RunDirLock(str(copy)):
        with pytest.raises(
            RunDirError, match=f"in use by another training process \\(PID {os.getpid()}"
        ):
            _train(_config(npz_dir, epochs=3), copy, overwrite=True)
    assert _digest(copy) == before


def test_overwrite_of_a_folder_that_is_not_a_run_dir_deletes_nothing(npz_dir, tmp_path):
    folder = tmp_path / "mine"
    (folder / "thesis").mkdir(parents=True)
    (folder / "notes.txt").write_text("precious")
    (folder / "thesis" / "chapter.tex").write_text("precious")
    before = _digest(folder)
    with pytest.raises(RunDirError, match="not empty and not a run directory of this project"):
        _train(_config(npz_dir), folder, overwrite=True)
    assert _digest(folder) == before


@slow
def test_evaluate_and_report_give_one_line_on_damaged_files(copy, capsys):
    (copy / "metrics.json").write_text("[1, 2]")
    assert run_guarded(lambda: run_analysis.regenerate_reports(str(copy))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {copy}/metrics.json: damaged (")
    assert "rerun the train command" in err[0]

    saved_model = copy / "export" / "saved_model.pb"
    saved_model.write_bytes(b"")
    assert run_guarded(lambda: run_analysis.evaluate_split(str(copy), "test")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the SavedModel is damaged" in err[0]
    assert "--from_checkpoint" in err[0]


@slow
def test_a_finished_run_with_a_damaged_export_is_exported_again(npz_dir, tiny_run, copy, caplog):
    (copy / "export" / "saved_model.pb").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="absl"):
        metrics = _train(_config(npz_dir), copy)
    messages = _messages(caplog)
    assert any("the SavedModel is damaged" in m and "exporting again" in m for m in messages)
    assert not any(m.startswith("epoch ") for m in messages)  # nothing retrained
    assert metrics["test_accuracy"] == tiny_run[1]["test_accuracy"]
    logits_fn, _ = finished_run.load_logits_fn(str(copy))  # the export serves again
    assert logits_fn(np.zeros((2, 28, 28), np.uint8)).shape == (2, 10)


@slow
def test_truncated_export_variables_are_one_line(copy):
    (variables,) = (copy / "export" / "variables").glob("variables.data-*")
    variables.write_bytes(variables.read_bytes()[:500])
    with pytest.raises(RunDirError, match="the SavedModel is damaged"):
        finished_run.load_logits_fn(str(copy))


@slow
def test_from_checkpoint_refuses_an_edited_config(copy):
    config = json.loads((copy / "config.json").read_text())
    config["model"]["hidden_units"] = [64, 16]
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        RunDirError,
        match=r"different settings than config.json describes "
        r"\(model.hidden_units: \(32, 16\) -> \(64, 16\)\)",
    ):
        finished_run.load_logits_fn(str(copy), from_checkpoint=True)


@slow
def test_from_checkpoint_with_a_damaged_config_uses_the_stored_settings(copy, caplog):
    (copy / "config.json").write_text("not json")
    with caplog.at_level(logging.WARNING, logger="absl"):
        logits_fn, source = finished_run.load_logits_fn(str(copy), from_checkpoint=True)
    assert source.endswith("ckpt-2")
    assert any("using the settings stored in" in m for m in _messages(caplog))
