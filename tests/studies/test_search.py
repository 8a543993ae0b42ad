"""The search command: its space checked against the declarations, its study, its trials."""

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from mnist_research import interrupts
from mnist_research.config import ExperimentConfig
from mnist_research.config import flags as experiment_flags
from mnist_research.config.saved import config_from_dict
from mnist_research.errors import ConfigError
from mnist_research.search import core_shares
from mnist_research.studies import claims, results, space, study
from tests.helpers import (
    REPO,
    SMOKE,
    early,
    finish,
    make_digits,
    run_main,
    signal_once_written,
    start,
    start_module,
)

BASE = ExperimentConfig()  # adam, an MLP of three dense blocks


def test_a_space_of_every_kind_reads_in_its_canonical_form():
    parsed = space.parse(
        "# a comment\n"
        "learning_rate = log(1e-4, 1e-2)   # trailing comment\n"
        "batch_size = linear(64, 256)\n"
        "optimizer = choice(adam | sgd)\n"
        "momentum = linear(0, 0.9)\n"
        "dropout_rates = choice(0.2, 0.2, 0.1 | 0.3,0.3,0.2)\n"
        "batch_norm = choice(true | false)\n",
        "space.txt",
        BASE,
    )
    assert parsed.lines() == {
        "learning_rate": "log(0.0001, 0.01)",
        "batch_size": "linear(64, 256)",
        "optimizer": "choice(adam | sgd)",
        "momentum": "linear(0.0, 0.9)",
        "dropout_rates": "choice(0.2,0.2,0.1 | 0.3,0.3,0.2)",
        "batch_norm": "choice(true | false)",
    }
    by_flag = {p.flag: p for p in parsed.parameters}
    assert by_flag["batch_size"].integer and not by_flag["learning_rate"].integer


@pytest.mark.parametrize(
    "line, message",
    [
        ("learnin_rate = log(1e-4, 1e-2)", "learnin_rate is not a setting"),
        ("steps_per_loop = linear(1, 9)", "steps_per_loop is not a hyperparameter"),
        ("learning_rate = log(0, 1e-2)", "log() needs a positive low"),
        ("learning_rate = linear(-1, 1e-2)", "learning_rate must be > 0, and the range holds -1.0"),
        ("momentum = linear(0, 1)", "momentum must be in [0, 1), and the range holds 1.0"),
        ("learning_rate = log(1e-2, 1e-4)", "low must be below high"),
        ("batch_size = linear(64.5, 256)", "batch_size: expected an integer, got '64.5'"),
        ("batch_size = linear(0, 256)", "batch_size must be >= 1"),
        ("optimizer = choice(adam, sgd)", "'adam, sgd' is not one of adam, adamw, sgd"),
        ("optimizer = linear(1, 2)", "optimizer is a str setting: use choice"),
        ("dropout_rates = choice(0.2,1.2,0.1)", "dropout_rates must all be in [0, 1)"),
        ("batch_norm = choice(yes | no)", "choose from true | false"),
        ("optimizer = choice(adam | adam)", "choice names a value twice"),
        ("learning_rate = uniform(1e-4, 1e-2)", "expected `setting = log(low, high)`"),
        ("learning_rate = log(1e-4)", "log() takes two numbers"),
        ("learning_rate = log(1e-4, nan)", "expected a finite number"),
    ],
)
def test_a_refused_line_is_one_error_naming_the_file_and_line(line, message):
    with pytest.raises(ConfigError) as error:
        space.parse(f"# first line\n{line}\n", "space.txt", BASE)
    assert str(error.value).startswith("space.txt:2: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "names no setting"),
        ("learning_rate = log(1e-4, 1e-2)\nlearning_rate = log(1e-3, 1e-2)", "already in"),
        # momentum applies only to sgd; neither the base recipe (adam) nor the space has it.
        ("momentum = linear(0, 0.9)", "momentum applies only to optimizer=sgd"),
        # The conv settings apply to --model=cnn (the field is `family`, the flag `model`).
        ("conv_kernel_size = linear(3, 5)", "conv_kernel_size applies only to model=cnn"),
    ],
)
def test_a_space_that_cannot_work_is_refused(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        space.parse(text, "space.txt", BASE)


def test_a_setting_is_sampled_only_where_it_applies():
    from mnist_research.studies import trials

    parsed = space.parse(
        "momentum = linear(0, 0.9)\noptimizer = choice(adam | sgd)", "space.txt", BASE
    )
    sgd = parsed.sample(optuna.trial.FixedTrial({"optimizer": "sgd", "momentum": 0.5}), BASE)
    adam = parsed.sample(optuna.trial.FixedTrial({"optimizer": "adam"}), BASE)
    assert sgd == {"momentum": 0.5, "optimizer": "sgd"} and adam == {"optimizer": "adam"}
    arguments = parsed.flag_arguments(sgd)
    assert arguments == ["--momentum=0.5", "--optimizer=sgd"]
    config = trials.trial_config(experiment_flags.flagfile_text(BASE), arguments)
    assert (config.train.optimizer, config.train.momentum) == ("sgd", 0.5)


def _settings(tmp_path, space_text="learning_rate = log(1e-4, 1e-2)", base=BASE, **kwargs):
    folder = str(tmp_path / "study")
    values = dict(
        name="study",
        folder=folder,
        storage=os.path.join(folder, study.JOURNAL_FILE),
        space=space.parse(space_text, "space.txt", base),
        base_flags=experiment_flags.flagfile_text(base),
        trials=2,
    )
    return study.StudySettings(**{**values, **kwargs})


def test_a_study_is_joined_with_its_own_space_and_recipe_and_refused_with_others(tmp_path):
    first = study.open_study(_settings(tmp_path))
    assert study.open_study(_settings(tmp_path))._study_id == first._study_id
    with pytest.raises(study.StudyError) as error:
        study.open_study(_settings(tmp_path, "learning_rate = log(1e-4, 1e-1)"))
    assert "another space (learning_rate: log(0.0001, 0.01) -> log(0.0001, 0.1))" in str(
        error.value
    )
    other_base = config_from_dict({**BASE.to_dict(), "experiment": "other"})
    with pytest.raises(study.StudyError) as error:
        study.open_study(_settings(tmp_path, base=other_base))
    assert "another base recipe (experiment: baseline -> other)" in str(error.value)


def test_an_unusable_storage_is_one_error_line(tmp_path):
    bad = _settings(tmp_path, storage="nosuchdb://somewhere/x")
    with pytest.raises(study.StudyError, match=r"^--storage=nosuchdb://somewhere/x: cannot open"):
        study.open_study(bad)


def test_trials_stop_at_the_asked_number_and_an_interrupted_one_does_not_count(tmp_path):
    settings = _settings(tmp_path)
    opened = study.open_study(settings)
    first = claims.next_trial(opened, settings)
    first.set_user_attr(study.INTERRUPTED, True)
    opened.tell(first, state=TrialState.FAIL)
    asked = [claims.next_trial(opened, settings) for _ in range(3)]
    assert [t.number for t in asked[:2]] == [1, 2] and asked[2] is None


_DYING_WORKER = """
import os, sys
from mnist_research import interrupts
from mnist_research.config import ExperimentConfig
from mnist_research.config import flags as experiment_flags
from mnist_research.studies import claims, results, space, study
base = ExperimentConfig()
folder = sys.argv[1]
settings = study.StudySettings(
    "study", folder, os.path.join(folder, study.JOURNAL_FILE),
    space.parse("learning_rate = log(1e-4, 1e-2)", "space.txt", base),
    experiment_flags.flagfile_text(base), 2,
)
trial = claims.next_trial(study.open_study(settings), settings)
trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
trial.set_user_attr(study.RUN_DIR, os.path.join(folder, "trial-000"))
os.kill(os.getpid(), 9)  # as a worker killed mid-trial
"""


def test_a_killed_workers_trial_is_continued_by_the_next_one_asked(tmp_path):
    settings = _settings(tmp_path)
    killed = subprocess.run(
        [sys.executable, "-c", _DYING_WORKER, settings.folder], cwd=REPO, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    opened = study.open_study(settings)
    (orphan,) = opened.get_trials()
    assert orphan.state == TrialState.RUNNING
    continued = claims.next_trial(opened, settings)  # the orphan's values and run dir, queued
    assert [t.state for t in opened.get_trials()] == [TrialState.FAIL, TrialState.RUNNING]
    value = continued.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    assert value == orphan.params["learning_rate"]
    assert continued.user_attrs[study.RUN_DIR] == orphan.user_attrs[study.RUN_DIR]
    assert claims.requeue_orphans(opened, settings.folder) == []  # this process is alive
    assert claims.counted(opened) == 1  # the killed trial is not counted, its continuation is


def test_a_trial_of_an_earlier_process_with_this_host_and_pid_is_an_orphan(tmp_path):
    """A restarted container's process has the host name and pid (1) of the one before it."""
    settings = _settings(tmp_path)
    opened = study.open_study(settings)
    mine = claims.next_trial(opened, settings)  # this process now holds its worker lock
    earlier = opened.ask()
    before = f"{socket.gethostname()}-{os.getpid()}-0123abcd"
    earlier.set_user_attr(study.WORKER, before)
    (tmp_path / "study" / ".workers" / before).touch()  # its lock file, unlocked
    assert mine.user_attrs[study.WORKER] != before
    assert claims.requeue_orphans(opened, settings.folder) == [earlier.number]
    assert [t.state for t in opened.get_trials()] == [
        TrialState.RUNNING,
        TrialState.FAIL,
        TrialState.WAITING,
    ]
    queued = opened.get_trials()[2]  # continues the run dir it would have had
    assert queued.user_attrs[study.RUN_DIR] == os.path.join(settings.folder, "trial-001")


_CLEAN_EXIT = """
import sys
from mnist_research.studies import claims, study
folder = sys.argv[1]
opened = study.load_study("study", folder + "/journal.log", folder)
opened.tell(claims.claim(opened, folder, dict), 1.0)
"""


def test_a_worker_removes_its_own_lock_file_when_it_ends_and_no_other(tmp_path):
    folder = tmp_path / "study"
    (folder / ".workers").mkdir(parents=True)
    (folder / ".workers" / "elsewhere-1-0123abcd").touch()
    ended = subprocess.run(
        [sys.executable, "-c", _CLEAN_EXIT, str(folder)], cwd=REPO, capture_output=True
    )
    assert ended.returncode == 0, ended.stderr[-2000:]
    (trial,) = study.load_study("study", str(folder / study.JOURNAL_FILE), str(folder)).trials
    assert trial.state == TrialState.COMPLETE and trial.user_attrs[study.WORKER]
    assert os.listdir(folder / ".workers") == ["elsewhere-1-0123abcd"]


def _run_a_trial_another_worker_fails(settings, ending):
    """Runs one trial whose training ends with ``ending()`` after another worker, taking it
    for dead (its heartbeats came late), failed it and queued it again; returns the study."""
    from mnist_research.studies import trials

    class LateWorker(trials.Worker):
        def _train(self, config, run_dir, pruning):
            other = _load(settings.folder)
            (running,) = other.get_trials(states=(TrialState.RUNNING,))
            assert claims.requeue(other, running, settings.folder)
            return ending()

    opened = study.open_study(settings)
    base = trials.trial_config(settings.base_flags, [])
    LateWorker(opened, settings).run_trial(claims.next_trial(opened, settings), base)
    return opened


def test_a_trial_another_worker_failed_while_it_trained_ends_with_one_line(tmp_path, caplog):
    settings = _settings(tmp_path)
    metrics = dict(best_val_accuracy=0.9, test_accuracy=1, epochs_completed=1, train_seconds=1)
    opened = _run_a_trial_another_worker_fails(settings, lambda: metrics)
    assert [t.state for t in opened.get_trials()] == [TrialState.FAIL, TrialState.WAITING]
    run_dir = os.path.join(settings.folder, "trial-000")
    assert f"Trial 0 finished ({run_dir} is complete), but the study had already" in caplog.text


@pytest.mark.parametrize("stop", [interrupts.Interrupted, KeyboardInterrupt])
def test_a_trial_stopped_after_another_worker_failed_it_stops_with_its_own_error(tmp_path, stop):
    """The trial stays failed with one continuation queued, by the worker that failed it."""
    settings = _settings(tmp_path)

    def stopped():
        raise stop(*((signal.SIGTERM,) if stop is interrupts.Interrupted else ()))

    with pytest.raises(stop):
        _run_a_trial_another_worker_fails(settings, stopped)
    opened = _load(settings.folder)
    assert [t.state for t in opened.get_trials()] == [TrialState.FAIL, TrialState.WAITING]


def test_core_shares():
    assert core_shares([0, 1], 2) == [[0], [1]]
    assert core_shares([0, 1, 2, 3], 2) == [[0, 1], [2, 3]]
    assert core_shares([0, 1], 3) == [[0], [1], [0]]
    assert core_shares([0, 1, 2], 1) == [[0, 1, 2]]


@pytest.mark.parametrize(
    "space_text, flags, message",
    [
        ("learning_rate = log(0, 1)", [], "log() needs a positive low"),
        ("learning_rat = log(1e-4, 1e-2)", [], "learning_rat is not a setting"),
        ("learning_rate = log(1e-4, 1e-2)", ["--workers=0"], "--workers=0"),
        ("learning_rate = log(1e-4, 1e-2)", ["--study=a/b"], "is not a study name"),
    ],
)
def test_bad_search_input_is_one_error_line(tmp_path, space_text, flags, message):
    (tmp_path / "space.txt").write_text(space_text + "\n")
    result = run_main(
        "mnist_research.search",
        SMOKE,
        f"--space={tmp_path / 'space.txt'}",
        "--study=s",
        f"--output={tmp_path / 'out'}",
        *flags,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def _load(folder):
    storage = study.storage_of(os.path.join(folder, study.JOURNAL_FILE), folder)
    return optuna.load_study(study_name=os.path.basename(folder), storage=storage)


@early
def early_test_a_study_on_two_workers_runs_each_trial_once_and_best_flags_reproduces(
    npz_dir, folder, environ
):
    (folder / "space.txt").write_text(
        "learning_rate = log(1e-3, 1e-2)\ndropout_rates = choice(0.1,0.1,0.1 | 0.3,0.3,0.2)\n"
    )
    return start(
        [
            *(sys.executable, "-m", "mnist_research.search", SMOKE),
            f"--data_dir={npz_dir}",
            "--nohistograms",
            "--nojit_compile",  # the plain step: XLA is not what this tests
            f"--space={folder / 'space.txt'}",
            "--study=two",
            "--trials=3",
            "--workers=2",
            f"--output={folder / 'out'}",
        ],
        env=environ,
    )


@pytest.mark.slow
def test_a_study_on_two_workers_runs_each_trial_once_and_best_flags_reproduces(
    tmp_path, early_process
):
    searched, result = early_process
    output = searched / "out"
    assert result.returncode == 0, result.stderr[-3000:]
    folder = str(output / "two")
    trials = _load(folder).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:  # each trial was started by one worker, once, in its own run dir
        assert len(re.findall(rf"Trial {t.number} started: ", result.stderr)) == 1
        metrics = json.load(open(os.path.join(folder, f"trial-{t.number:03d}", "metrics.json")))
        assert metrics["finished"] and not metrics["pruned"] and metrics["epochs_completed"] == 2
        assert t.value == metrics["best_val_accuracy"]
        assert t.user_attrs["train_seconds"] == metrics["train_seconds"]
        assert os.path.exists(
            os.path.join(folder, f"trial-{t.number:03d}", "reports", "report.html")
        )
    assert sorted(map(os.path.basename, glob.glob(os.path.join(folder, "trial-*")))) == [
        "trial-000",
        "trial-001",
        "trial-002",
    ]
    table = open(os.path.join(folder, results.TABLE_FILE)).read()
    assert table in result.stdout and table.count("| complete |") == 3

    best = max(trials, key=lambda t: t.value)
    again = tmp_path / "again"
    train = run_main(  # in this process: what it trains is the point, not its process
        "mnist_research.train",
        f"--flagfile={os.path.join(folder, results.BEST_FLAGS_FILE)}",
        f"--run_dir={again}",
        cwd=str(tmp_path),
    )
    assert train.returncode == 0, train.stderr[-3000:]
    trained = open(os.path.join(folder, f"trial-{best.number:03d}", "flags.txt")).read()
    assert open(again / "flags.txt").read() == trained


@pytest.mark.slow
def test_a_pruned_trial_is_a_finished_run_that_says_so(tmp_path, npz_dir):
    from mnist_research.analysis import run_list, run_records
    from mnist_research.studies import trials
    from mnist_research.training.runner import EndOfRunAction

    flags = [SMOKE, f"--data_dir={npz_dir}", "--nohistograms", "--nojit_compile"]
    base = trials.trial_config("", flags)
    settings = _settings(tmp_path, base=base, trials=1)
    # No accuracy reaches 1.5: the pruner prunes every trial after its first epoch.
    opened = study.open_study(settings, pruner=optuna.pruners.ThresholdPruner(lower=1.5))
    written = []
    reports = EndOfRunAction("reporting", lambda run, metrics, test: written.append(1))
    worker = trials.Worker(opened, settings, completed_only=[reports], verbose=False)
    assert worker.run() == 1 and not written  # a pruned trial skips the reports
    (trial,) = opened.get_trials()
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [1]
    run_dir = os.path.join(settings.folder, "trial-000")
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["finished"] and metrics["pruned"] and metrics["epochs_completed"] == 1
    assert run_list.row(run_records.read_run(run_dir))["status"] == "finished (pruned)"


def test_the_shipped_space_reads_against_the_baseline_recipe():
    from mnist_research.studies import trials

    base = trials.trial_config("", [f"--flagfile={REPO}/experiments/baseline.flags"])
    parsed = space.read(os.path.join(REPO, "experiments", "mlp.space"), base)
    assert "weight_decay" in parsed.lines() and "learning_rate" in parsed.lines()


@pytest.mark.slow
def test_a_stopped_or_killed_trial_is_continued_from_its_checkpoint_once(tmp_path):
    x, y = make_digits(1000, seed=3)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:100], y_test=y[:100])
    (tmp_path / "space.txt").write_text("learning_rate = log(1e-3, 1e-2)\n")
    output = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "mnist_research.search",
        SMOKE,
        f"--data_dir={tmp_path}",
        "--epochs=8",
        "--batch_size=32",
        "--steps_per_loop=1",
        "--nohistograms",
        "--nojit_compile",  # the plain step: no XLA compile before the first checkpoint
        f"--space={tmp_path / 'space.txt'}",
        "--study=stopped",
        "--trials=1",
        f"--output={output}",
    ]
    search = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    checkpoint = str(output / "stopped" / "trial-000" / "checkpoints" / "ckpt-1.index")
    stderr = signal_once_written(search, checkpoint)
    assert search.returncode == 143, stderr[-3000:]
    stopped = [line for line in stderr.splitlines() if line.startswith("SIGTERM: ")]
    assert len(stopped) == 1 and "rerun the same command to go on" in stopped[0], stderr
    first = _load(str(output / "stopped")).get_trials()
    assert [t.state for t in first] == [TrialState.FAIL, TrialState.WAITING]

    # The continuation's worker is killed (SIGKILL: nothing of it runs) after its 3rd epoch.
    search = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    # Once ckpt-4's files appear, ckpt-3 is committed (ckpt-3.index appears before its
    # commit: a kill there restored ckpt-2).
    stderr = signal_once_written(search, checkpoint.replace("ckpt-1", "ckpt-4"), signal.SIGKILL)
    assert search.returncode == -signal.SIGKILL, stderr[-3000:]
    killed = _load(str(output / "stopped")).get_trials()
    assert [t.state for t in killed] == [TrialState.FAIL, TrialState.RUNNING]

    # The rerun continues it in this process: what it restores is the point, not its process.
    again = run_main(*command[2:], timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert re.search(r"Restored \S+ckpt-[3-8]\b", again.stderr), again.stderr[-3000:]
    trials = _load(str(output / "stopped")).get_trials()
    states = [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert [t.state for t in trials] == states  # each trial exactly once, none lost
    assert trials[2].params == first[0].params
    assert sorted(trials[2].intermediate_values) == list(range(1, 9))  # restored epochs too
    assert trials[2].user_attrs["run_dir"] == first[0].user_attrs["run_dir"]
    metrics = json.load(open(output / "stopped" / "trial-000" / "metrics.json"))
    assert metrics["finished"] and metrics["epochs_completed"] == 8
    assert not glob.glob(str(output / "stopped" / "trial-001"))


@pytest.fixture(scope="module")
def postgres_url():
    from tests.studies import postgres

    bindir = postgres.binaries()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb): .ci/run installs it")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install -e '.[postgres]'")
    with postgres.server(bindir) as url:
        yield url


def test_a_database_storage_is_shared_and_a_wrong_one_is_one_line(tmp_path, postgres_url):
    settings = _settings(tmp_path, storage=postgres_url)
    first = study.open_study(settings)
    assert study.open_study(settings)._study_id == first._study_id
    unreachable = postgres_url.rsplit(":", 1)[0] + ":1/postgres"
    with pytest.raises(study.StudyError, match=r"^--storage=.*:1/postgres: cannot open it"):
        study.open_study(_settings(tmp_path, storage=unreachable))


@pytest.mark.slow
def test_two_search_commands_share_one_study_in_postgresql(tmp_path, npz_dir, postgres_url):
    (tmp_path / "space.txt").write_text("learning_rate = log(1e-3, 1e-2)\n")
    command = [
        SMOKE,
        f"--data_dir={npz_dir}",
        "--nohistograms",
        "--nojit_compile",  # the plain step: XLA is not what this tests
        f"--space={tmp_path / 'space.txt'}",
        "--study=shared",
        "--trials=4",
        f"--storage={postgres_url}",
        f"--output={tmp_path / 'out'}",
    ]
    started = [start_module("mnist_research.search", *command) for _ in range(2)]
    results = [finish(process, timeout=600) for process in started]
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    storage = study.storage_of(postgres_url, str(tmp_path / "out" / "shared"))
    trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    stderr = "".join(r.stderr for r in results)
    for t in trials:
        assert len(re.findall(rf"Trial {t.number} started: ", stderr)) == 1
    assert all(re.search(r"Trial \d started: ", r.stderr) for r in results)  # both took trials


_WORKER_DYING_ELSEWHERE = """
import os, sys, time
import optuna
from mnist_research import interrupts
from mnist_research.config import ExperimentConfig
from mnist_research.config import flags as experiment_flags
from mnist_research.studies import claims, space, study
base = ExperimentConfig()
folder, url = sys.argv[1:]
settings = study.StudySettings(
    "elsewhere", folder, url, space.parse("learning_rate = log(1e-4, 1e-2)", "space.txt", base),
    experiment_flags.flagfile_text(base), 2,
)
opened = study.open_study(settings)
opened = optuna.load_study(study_name="elsewhere", storage=study.storage_of(url, folder, 1, 2))
trial = claims.next_trial(opened, settings)
trial.set_user_attr(study.WORKER, "elsewhere-1-0123abcd")  # its lock files are not this machine's
trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
trial.set_user_attr(study.RUN_DIR, os.path.join(folder, "trial-000"))
with claims.beating(trial):
    time.sleep(0.5)
    os.kill(os.getpid(), 9)  # as a worker killed mid-trial
"""


def test_a_trial_whose_worker_died_on_another_machine_is_continued_once(tmp_path, postgres_url):
    settings = _settings(tmp_path, name="elsewhere", storage=postgres_url)
    killed = subprocess.run(
        [sys.executable, "-c", _WORKER_DYING_ELSEWHERE, settings.folder, postgres_url],
        cwd=REPO,
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    def load():  # a worker's view: heartbeats every second, dead after 2 s without one
        return optuna.load_study(
            study_name="elsewhere", storage=study.storage_of(postgres_url, settings.folder, 1, 2)
        )

    first, second = load(), load()
    (orphan,) = first.get_trials()
    assert orphan.state == TrialState.RUNNING
    assert claims.requeue_orphans(first, settings.folder) == []  # no lock file of its worker here
    time.sleep(3)  # the grace period runs out
    continued = claims.next_trial(first, settings)
    with claims.beating(continued):  # as a worker does while it trains
        fresh = claims.next_trial(second, settings)  # the stale trial is not queued twice
        assert fresh is not None and study.RUN_DIR not in fresh.user_attrs
    trials = first.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
    assert continued.number == 1 and fresh.number == 2
    assert continued.user_attrs[study.RUN_DIR] == orphan.user_attrs[study.RUN_DIR]
    value = continued.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    assert value == orphan.params["learning_rate"]
    assert claims.counted(first) == 2  # the dead trial is not counted, its continuation is


def test_a_trial_whose_worker_died_before_its_first_beat_is_continued(tmp_path, postgres_url):
    """Optuna fails only a trial with a heartbeat: the first is recorded as it is taken."""
    settings = _settings(tmp_path, name="unbeaten", storage=postgres_url)
    study.open_study(settings)

    def load():  # a worker's view: heartbeats every second, dead after 2 s without one
        storage = study.storage_of(postgres_url, settings.folder, 1, 2)
        return optuna.load_study(study_name="unbeaten", storage=storage)

    first = load()
    orphan = claims.next_trial(first, settings)
    orphan.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    # Its worker, on another machine, dies before it records its run dir or beats again.
    orphan.set_user_attr(study.WORKER, "another-machine-1-0123abcd")
    time.sleep(3)  # the grace period runs out
    continued = claims.next_trial(load(), settings)
    assert [t.state for t in first.get_trials()] == [TrialState.FAIL, TrialState.RUNNING]
    # It continues the run dir the dead trial would have had.
    assert continued.user_attrs[study.RUN_DIR] == os.path.join(settings.folder, "trial-000")
    value = continued.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    assert value == orphan.params["learning_rate"]
