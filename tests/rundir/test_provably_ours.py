"""Issue 26: a run acts only on what it provably wrote, and a resume is the same experiment.

Class 1: a folder that is not a run dir of this project is used only if empty; clean-up,
pruning and rewrites touch only this project's names at the places it writes them; the
lock never follows a link. Class 2: the data read (a fingerprint), the replica placement
and the XLA step are part of what a resume checks. Class 6: a non-UTF-8 run dir path is
refused before anything is written. Class 8: a resume keeps the TensorBoard graph and
removes a half-written best checkpoint.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from mnist_research.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.data import sources
from mnist_research.errors import RunDirError
from mnist_research.rundir import existing, layout, records
from mnist_research.rundir.lock import RunDirLock
from mnist_research.training import existing_run, runner
from tests.helpers import run_main

# The tests that train (a resume, in process: a second or two each) are slow; the others
# are refused before training or only read or change files. The finished one-epoch run
# they start from is trained once, into an empty folder (`ours`, under a second), and
# copied by each test that changes it.
slow = pytest.mark.slow


def _config(epochs=1, **train):
    # The plain step (no XLA compilation: about half of a tiny run's time here): what these
    # tests check is the run dir; the XLA step's own tests are in tests/training.
    train = {"jit_compile": False, **train}
    return ExperimentConfig(
        experiment="ours",
        data=DataConfig(validation_split=0.2),
        model=ModelConfig(hidden_units=(16,), dropout_rates=(0.0,)),
        train=TrainConfig(
            epochs=epochs, batch_size=64, steps_per_loop=4, histograms=False, **train
        ),
    )


def _splits(arrays):
    return sources.split(sources.RawData(**arrays, source="tiny"), DataConfig())


def _train(run_dir, arrays, epochs=1, **train):
    return runner.train_and_evaluate(
        _config(epochs, **train),
        str(run_dir),
        datasets=_splits(arrays),
        verbose=False,
        strategy=tf.distribute.get_strategy(),
    )


@pytest.fixture(scope="module")
def ours(tmp_path_factory, tiny_arrays):
    """A finished one-epoch run, trained into a folder that existed and was empty."""
    folder = tmp_path_factory.mktemp("ours") / "empty"
    folder.mkdir()
    _train(folder, tiny_arrays, epochs=1)
    return folder


@pytest.fixture
def run(ours, tmp_path):
    """A copy of ``ours`` to change."""
    shutil.copytree(ours, tmp_path / "run")
    return tmp_path / "run"


def _snapshot(folder):
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


# --------------------------------------------------------------------------- class 1


@pytest.mark.parametrize(
    "contents",
    [
        {"config.json": '{"name": "another program"}'},
        {"notes.txt": "mine"},
        {"config.json": '{"name": "x"}', "checkpoints/model.pt": "w"},
    ],
)
def test_a_folder_that_is_not_a_run_dir_is_refused_untouched(tmp_path, tiny_arrays, contents):
    folder = tmp_path / "theirs"
    for relative, text in contents.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    before = _snapshot(folder)
    with pytest.raises(RunDirError, match="not a run directory of this project"):
        _train(folder, tiny_arrays)
    assert _snapshot(folder) == before


def test_the_parent_of_runs_is_refused_and_its_runs_untouched(ours, tmp_path, tiny_arrays):
    shutil.copytree(ours, tmp_path / "parent" / "run1")
    before = _snapshot(tmp_path / "parent")
    with pytest.raises(RunDirError, match="not a run directory of this project"):
        _train(tmp_path / "parent", tiny_arrays)
    assert _snapshot(tmp_path / "parent") == before


def test_an_empty_folder_is_used_and_marked(ours):
    # `ours` was an empty folder when the run started in it.
    assert (ours / layout.MARKER_FILE).is_file()
    assert existing.ownership(str(ours)) == "ours"


def test_clean_up_touches_only_the_projects_names_at_its_places(run):
    mine = {
        "sub/.tmp-x": "mine",
        "reports/sub/.tmp-y": "mine",
        "train/sub/a.pruning": "mine",
        "export.old/mine.txt": "mine",
        "checkpoints/ckpt-9_temp/notes.md": "mine",
    }
    for relative, text in mine.items():
        (run / relative).parent.mkdir(parents=True, exist_ok=True)
        (run / relative).write_text(text)
    ours = [
        "checkpoints/best/ckpt-3_temp/part-00000-of-00001.data-00000-of-00001",
        "reports/.tmp-abc-curves.png",
        "train/events.out.tfevents.1.h.v2.pruning",
    ]
    for relative in ours:
        (run / relative).parent.mkdir(parents=True, exist_ok=True)
        (run / relative).write_text("half")
    removed = existing.remove_stale_temporaries(str(run))
    for relative, text in mine.items():
        assert (run / relative).read_text() == text
    for relative in ours:
        assert not (run / relative).exists()
    assert len(removed) == len(ours)


def test_a_foreign_file_in_export_is_refused_before_anything_is_written(run, tiny_arrays):
    (run / "export").mkdir()
    (run / "export" / "mine.txt").write_text("mine")
    before = _snapshot(run)
    with pytest.raises(RunDirError, match="export/mine.txt"):
        _train(run, tiny_arrays, epochs=2)
    assert _snapshot(run) == before


def test_a_damaged_config_of_a_marked_run_is_rewritten_but_an_unmarked_one_refused(
    run, tiny_arrays
):
    (run / "config.json").write_text("{damaged")
    _train(run, tiny_arrays, epochs=1)  # marked: rewritten from the command's settings
    assert json.loads((run / "config.json").read_text())["experiment"] == "ours"
    (run / layout.MARKER_FILE).unlink()
    (run / "config.json").write_text("{damaged")
    with pytest.raises(RunDirError, match="not a run directory of this project"):
        _train(run, tiny_arrays, epochs=1)
    assert (run / "config.json").read_text() == "{damaged"


@slow
def test_a_run_dir_written_before_the_marker_still_resumes(run, tiny_arrays):
    (run / layout.MARKER_FILE).unlink()
    assert existing.ownership(str(run)) == "ours"  # config.json of ours + checkpoints/
    metrics = _train(run, tiny_arrays, epochs=2)
    assert metrics["epochs_completed"] == 2


def test_the_lock_never_follows_a_link(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("keep")
    (run / ".lock").symlink_to(elsewhere)
    with pytest.raises(RunDirError, match="symbolic link"):
        with RunDirLock(str(run)):
            pass
    assert elsewhere.read_text() == "keep"


def test_overwrite_refuses_another_programs_config(tmp_path, tiny_arrays):
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "config.json").write_text('{"name": "another program"}')
    with pytest.raises(RunDirError, match="not a run directory of this project"):
        runner.train_and_evaluate(
            _config(),
            str(folder),
            datasets=_splits(tiny_arrays),
            verbose=False,
            strategy=tf.distribute.get_strategy(),
            overwrite=True,
        )
    assert (folder / "config.json").read_text() == '{"name": "another program"}'


# --------------------------------------------------------------------------- class 2


@slow
def test_a_resume_on_other_data_is_refused(run, tiny_arrays):
    recorded = json.loads((run / "metrics.json").read_text())
    assert len(recorded["data_sha256"]) == 64
    other = {**tiny_arrays, "x_train": np.ascontiguousarray(255 - tiny_arrays["x_train"])}
    before = _snapshot(run)
    with pytest.raises(RunDirError, match="other the data read"):
        _train(run, other, epochs=2)
    assert _snapshot(run) == before
    assert _train(run, tiny_arrays, epochs=2)["epochs_completed"] == 2


@slow
def test_a_run_without_a_fingerprint_resumes_with_a_warning_and_records_it(run, tiny_arrays):
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["data_sha256"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert "data_sha256" in _train(run, tiny_arrays, epochs=2)


def test_a_resume_with_another_replica_count_or_xla_step_is_refused(run, tiny_arrays):
    assert json.loads((run / "config.json").read_text())["train"]["jit_compile"] is False
    with pytest.raises(RunDirError, match="jit_compile: False -> True"):
        _train(run, tiny_arrays, epochs=2, jit_compile=True)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["num_replicas"] = 2
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunDirError, match="the replica count: 2 -> 1"):
        _train(run, tiny_arrays, epochs=2, jit_compile=False)


# --------------------------------------------------------------------------- class 6


def test_a_non_utf8_run_dir_is_refused_before_anything_is_written(tmp_path, tiny_arrays):
    name = os.fsdecode(b"run-\xff")
    with pytest.raises(RunDirError, match="valid UTF-8"):
        _train(tmp_path / name, tiny_arrays)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- class 8


def _graph_events(run):
    from tensorboard.backend.event_processing import event_accumulator

    count = 0
    for path in (run / "train").glob("events.out.tfevents.*"):
        acc = event_accumulator.EventAccumulator(str(path))
        acc.Reload()
        count += len(acc.Tags().get("tensors", [])) and "train_steps" in acc.Tags()["tensors"]
        count += bool(acc.Tags().get("graph"))
    return count


@slow
def test_a_resume_keeps_the_graph(run, tiny_arrays):
    # `ours` was trained without a profile (profile_steps=(), the default).
    graph_before = _graph_events(run)
    assert graph_before
    # The graph summary is keyed by optimizer step: it survives pruning after epoch 1.
    assert existing_run.prune_after(str(run), 1, 8) == 0
    _train(run, tiny_arrays, epochs=2, profile_steps=())
    assert _graph_events(run) == graph_before


# --------------------------------------------------------------------------- class 6 (metrics)


@pytest.mark.parametrize(
    "text",
    [
        '{"finished": true, "epochs_completed": 1, "x": NaN}',
        '{"finished": true, "epochs_completed": 1, "x": Infinity}',
        '{"finished": true, "epochs_completed": 1, "x": 1' + "0" * 400 + "}",
    ],
)
def test_report_and_compare_refuse_non_finite_metrics_in_one_line(tmp_path, text):
    run = tmp_path / "run"
    run.mkdir()
    layout.save_config(str(run), ExperimentConfig(), "")
    (run / "metrics.json").write_text(text)
    assert "not a finite number" in records.metrics_problem(json.loads(text))
    result = run_main("mnist_research.compare", str(run), str(run))  # its process: test_compare
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "not a finite number" in result.stderr


@pytest.mark.parametrize(
    "relative",
    [
        "reports",
        "train",
        "validation",
        "checkpoints",
        "export",
        "export.old",
        "config.json",
        "metrics.json",
        "checkpoints/checkpoint",
        "train/events",
    ],
)
def test_a_link_inside_a_run_dir_is_refused_and_nothing_it_leads_to_touched(
    run, tmp_path, tiny_arrays, relative
):
    from mnist_research.inference import finished_run

    if relative == "train/events":
        relative = os.path.relpath(next((run / "train").glob("events.*")), run)
    target, elsewhere = run / relative, tmp_path / "elsewhere"
    if target.exists():
        shutil.move(target, elsewhere)
    else:
        elsewhere.mkdir()
    if elsewhere.is_dir():  # what a clean-up, a prune or a report would touch there
        for name in (".tmp-x", "x.pruning", "curves.png", "ckpt-9_temp/part-0"):
            (elsewhere / name).parent.mkdir(exist_ok=True)
            (elsewhere / name).write_text("someone else's")
    target.symlink_to(elsewhere)
    before = (_snapshot(tmp_path), os.stat(elsewhere).st_mtime_ns)
    with pytest.raises(RunDirError, match=f"{relative}: a symbolic link"):
        _train(run, tiny_arrays, epochs=2)
    with pytest.raises(RunDirError, match=f"{relative}: a symbolic link"):
        finished_run.load_config(str(run))  # evaluate, report, predict
    assert (_snapshot(tmp_path), os.stat(elsewhere).st_mtime_ns) == before


@pytest.mark.parametrize(
    "relative, make", [("checkpoints/checkpoint", "folder"), ("export", "file")]
)
def test_a_folder_where_a_run_writes_a_file_or_the_other_way_round_is_refused(
    run, tiny_arrays, relative, make
):
    target = run / relative
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    target.mkdir() if make == "folder" else target.write_text("x")
    before = _snapshot(run)
    with pytest.raises(RunDirError, match=f"{relative}: not a "):
        _train(run, tiny_arrays, epochs=2)
    assert _snapshot(run) == before


# --------------------------------------------------------------------------- class 5


@pytest.mark.parametrize("folder", ["checkpoints", "checkpoints/best"])
def test_a_checkpoint_of_another_run_is_refused_by_every_reader(run, tmp_path, tiny_arrays, folder):
    from mnist_research.inference import finished_run

    other = tmp_path / "seed7"
    _train(other, tiny_arrays, epochs=1, seed=7, restore_best=True)
    if folder == "checkpoints/best":  # the folder a --restore_best run's readers load
        config = json.loads((run / "config.json").read_text())
        config["train"]["restore_best"] = True
        (run / "config.json").write_text(json.dumps(config))
        shutil.rmtree(run / folder, ignore_errors=True)
        shutil.copytree(other / folder, run / folder)
    else:
        for path in (other / folder).glob("ckpt-1.*"):
            shutil.copy(path, run / folder / path.name)
    readers = [lambda: finished_run.load_logits_fn(str(run), from_checkpoint=True)]
    if folder == "checkpoints":  # train resumes from it (train never reads best/)
        readers.append(lambda: _train(run, tiny_arrays, epochs=2))
    before = _snapshot(run)
    for read in readers:  # evaluate, report, predict --from_checkpoint; train
        with pytest.raises(
            RunDirError, match=r"ckpt-1 was trained with different settings.*seed: 7"
        ):
            read()
    assert _snapshot(run) == before


def test_a_checkpoint_of_a_run_with_the_same_settings_on_other_data_is_refused(
    run, tmp_path, tiny_arrays
):
    from mnist_research.inference import finished_run

    other_data = {**tiny_arrays, "x_train": 255 - tiny_arrays["x_train"]}
    other = tmp_path / "other-data"
    _train(other, other_data, epochs=1)  # the same settings, seed included
    for path in (other / "checkpoints").glob("ckpt-1.*"):
        shutil.copy(path, run / "checkpoints" / path.name)
    before = _snapshot(run)
    readers = [
        lambda: finished_run.load_logits_fn(str(run), from_checkpoint=True),
        lambda: _train(run, tiny_arrays, epochs=2),
    ]
    for read in readers:  # evaluate, report, predict --from_checkpoint; train
        with pytest.raises(RunDirError, match=r"ckpt-1 was trained on other data"):
            read()
    assert _snapshot(run) == before


def test_another_runs_checkpoint_is_not_taken_for_a_damaged_config_json(run, tmp_path, tiny_arrays):
    """With config.json damaged, readers use a checkpoint's settings only if flags.txt agrees."""
    from mnist_research.config import flags as experiment_flags
    from mnist_research.inference import finished_run

    (run / "flags.txt").write_text(experiment_flags.flagfile_text(_config()))
    (run / "config.json").write_text("{damaged")
    assert finished_run.load_config(str(run)) == records.flags_txt_config(str(run))  # its own
    other = tmp_path / "seed7"
    _train(other, tiny_arrays, epochs=1, seed=7)
    for path in (other / "checkpoints").glob("ckpt-1.*"):
        shutil.copy(path, run / "checkpoints" / path.name)
    with pytest.raises(RunDirError, match=r"different settings than flags.txt records.*seed: 7"):
        finished_run.load_config(str(run))
