"""What a user's terminal shows: the progress bar's numbers, TensorFlow's noise, log format."""

import logging as std_logging
import os
import re
import sys

import pytest
import tensorflow as tf
from absl import flags, logging

from mnist_research import logs
from mnist_research.config import ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.data import pipeline
from mnist_research.training import hooks, loop
from mnist_research.training.loop import Trainer
from tests.helpers import early, finish, make_digits, start

SHOWN = re.compile(r"(\d+)/\d+.*?loss: ([\d.]+) - accuracy: ([\d.]+)")


def _epoch(monkeypatch, interactive: bool):
    """One epoch of 10 steps, 2 per call; returns (totals, recorded bar updates)."""
    tf.keras.utils.set_random_seed(0)
    config = ExperimentConfig(
        model=ModelConfig(hidden_units=(32,), dropout_rates=(0.1,)),
        train=TrainConfig(batch_size=32, steps_per_loop=2),
    )
    trainer = Trainer(config, tf.distribute.get_strategy())
    images, labels = make_digits(320)
    train_input = pipeline.TrainInput(images, labels, 32, seed=0)
    updates = []

    class RecordingBar(tf.keras.utils.Progbar):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.interval = 0.0  # draw every update, so each one can be checked

        def update(self, current, values=None, finalize=None):
            updates.append((current, dict(values)))
            super().update(current, values, finalize)

    monkeypatch.setattr(tf.keras.utils, "Progbar", RecordingBar)
    monkeypatch.setattr(logs, "interactive_output", lambda: interactive)
    batches = train_input.distributed(trainer.strategy, 1, 1, 10)
    totals, _ = loop.train_epoch(trainer, batches, 10, [hooks.ProgressBar(10)])
    return totals, updates


def test_progress_bar_shows_the_running_epoch_means_it_is_given(monkeypatch, capsys):
    totals, updates = _epoch(monkeypatch, interactive=True)
    out = capsys.readouterr().out
    shown = [(int(s), float(loss), float(acc)) for s, loss, acc in SHOWN.findall(out)]
    assert [u[0] for u in updates] == [2, 4, 6, 8, 10]
    assert len(shown) == 5
    for (step, loss, accuracy), (current, values) in zip(shown, updates):
        # Displayed as given (Progbar's own averaging would show other numbers).
        assert step == current
        assert loss == pytest.approx(values["loss"], abs=6e-5)
        assert accuracy == pytest.approx(values["accuracy"], abs=6e-5)
    # The last update is the epoch's mean, the numbers the epoch line reports.
    assert updates[-1][1] == totals.means()
    assert len({u[1]["loss"] for u in updates}) > 1
    assert out.endswith("\r\x1b[K"), "the bar is erased for the epoch line"


def test_no_bar_and_no_control_characters_when_stdout_is_not_a_terminal(monkeypatch, capsys):
    _, updates = _epoch(monkeypatch, interactive=False)
    assert updates == []
    assert capsys.readouterr().out == ""


def test_stderr_filter_drops_only_the_listed_lines(capfd):
    with logs.stderr_without(logs.LIBRARY_LOAD_NOISE):
        os.write(
            2,
            b"WARNING: All log messages before absl::InitializeLog() is called are "
            b"written to STDERR\n",
        )
        os.write(
            2,
            b"I0000 00:00:1.2 15 cudart_stub.cc:31] Could not find cuda drivers on your "
            b"machine, GPU will not be used.\n",
        )
        os.write(2, b"a real problem\n")
        os.write(
            2,
            b"I0000 00:00:1796398565.596645    3871 port.cc:153] oneDNN custom operations "
            b"are on. You may see slightly different numerical results due to "
            b"floating-point round-off errors from different computation orders. To turn "
            b"them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n",
        )
        os.write(
            2,
            b"To enable the following instructions: AVX2 FMA, in other operations, "
            b"rebuild TensorFlow with the appropriate compiler flags.\n",
        )
        os.write(2, b"and another\n")
    assert capfd.readouterr().err == "a real problem\nand another\n"


def test_configure_drops_framework_info_and_keeps_warnings():
    handler = logging.get_absl_handler()
    saved_formatter, saved_level = handler.formatter, logging.get_verbosity()
    was_parsed = flags.FLAGS.is_parsed()
    try:
        logs.configure(0)
        tf_file = os.path.join(os.path.dirname(tf.__file__), "python", "x.py")
        record = std_logging.LogRecord("absl", std_logging.INFO, tf_file, 1, "Sharding", (), None)
        ours = std_logging.LogRecord("absl", std_logging.INFO, __file__, 1, "epoch 1/2", (), None)
        warning = std_logging.LogRecord(
            "absl", std_logging.WARNING, tf_file, 1, "careful", (), None
        )
        assert not handler.filter(record)
        assert handler.filter(ours) and handler.filter(warning)
        assert handler.format(ours) == "epoch 1/2"
        assert handler.format(warning) == "warning: careful"
        logs.configure(1)
        assert handler.filter(record)
        assert "epoch 1/2" in handler.format(ours) and handler.format(ours) != "epoch 1/2"
    finally:
        logs.configure(saved_level)
        handler.setFormatter(saved_formatter)
        if not was_parsed:
            flags.FLAGS.unparse_flags()


# TF_ENABLE_ONEDNN_OPTS=1 makes TensorFlow print oneDNN's banner on any x86 CPU (by default
# only CPUs with AVX512_VNNI or AVX512_BF16 do); =0 is a machine without it.
ONEDNN = pytest.mark.parametrize("onednn", ["0", "1"])
ONEDNN_BANNER = "oneDNN custom operations are on"
NOISE = (
    "cuda",
    "cpu_feature_guard",
    "oneDNN",
    "I0000",
    "W0000",
    "E0000",
    "absl::",
    "Sharding callback",
    "UserWarning",
)


def _start_as_a_user(onednn, *args, **env):
    """``python args`` started without the test suite's TF_CPP_MIN_LOG_LEVEL, as a user runs
    it; :func:`_wait` waits for it."""
    full_env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    full_env.update(TF_ENABLE_ONEDNN_OPTS=onednn, **env)
    return start([sys.executable, *args], env=full_env)


def _wait(process):
    return finish(process, timeout=600)


def _python_as_a_user(onednn, *args, **env):
    """``python args`` without the test suite's TF_CPP_MIN_LOG_LEVEL, as a user runs it."""
    return _wait(_start_as_a_user(onednn, *args, **env))


def _tensorflow_lines(stderr):
    """TensorFlow's lines, and any glog/absl-prefixed one ("I1125 17:00:00.123 ...")."""
    return [
        line
        for line in stderr.splitlines()
        if any(n in line for n in NOISE) or re.match(r"[IWEF]\d{4} ", line)
    ]


@pytest.fixture(scope="module")
def quiet_sweeps(npz_dir, tmp_path_factory):
    """The noise test's sweep (one run), once per TF_ENABLE_ONEDNN_OPTS, both started at
    once: onednn → (its --output, the finished sweep process)."""
    folder = tmp_path_factory.mktemp("quiet_sweeps")
    started = {
        onednn: _start_as_a_user(
            onednn,
            "-m",
            "mnist_research.sweep",
            "--experiments=smoke",
            "--seeds=1",
            f"--data_dir={npz_dir}",
            f"--output={folder / onednn}",
        )
        for onednn in ("0", "1")
    }
    return {onednn: (folder / onednn, _wait(process)) for onednn, process in started.items()}


@pytest.mark.slow
@ONEDNN
def test_a_command_and_its_runs_show_no_tensorflow_noise_unless_asked(
    quiet_sweeps, npz_dir, onednn
):
    # A sweep imports no TensorFlow; the training run it starts does (XLA, checkpoints,
    # SavedModel export, report) and must not take the sweep's quiet settings for the user's.
    output, quiet = quiet_sweeps[onednn]
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    lines = quiet.stderr.splitlines()
    assert lines[0].startswith("Running ") and "--verbosity=0" in lines[0]
    # The run's last log line (its result line goes to its stdout, which the sweep reads).
    assert lines[-1].startswith("epoch 2/2 "), quiet.stderr[-3000:]
    assert not _tensorflow_lines(quiet.stderr), quiet.stderr[-3000:]
    if onednn == "0":
        return
    # --verbosity=1 brings back absl's prefix and everything TensorFlow says, its banner too.
    loud = _python_as_a_user(
        onednn,
        "-m",
        "mnist_research.train",
        "--flagfile=experiments/smoke.flags",
        "--seed=1",
        f"--data_dir={npz_dir}",
        f"--run_dir={output / 'smoke-seed1'}",
        "--verbosity=1",
    )
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert re.search(r"\.py:\d+\] .*smoke-seed1 is complete", loud.stderr), loud.stderr[-3000:]
    assert loud.stderr.count(ONEDNN_BANNER) == 2, loud.stderr[-3000:]


# An extension module imported after TensorFlow prints nothing (its libraries are loaded).
QUIET_IMPORT = (
    "from mnist_research import logs; assert logs.quiet_tensorflow();"
    "import tensorflow as tf; tf.constant(1) + 1;"
    "from tensorflow.python.util import _pywrap_stat_summarizer as lazy"
)


@pytest.fixture(scope="module")
def imports():
    """The import tests' three Pythons, started at once (each pays TensorFlow's import):
    the quiet import with oneDNN off and on, and a user's own TF_CPP_MIN_LOG_LEVEL=0."""
    started = {
        "quiet0": _start_as_a_user("0", "-c", QUIET_IMPORT),
        "quiet1": _start_as_a_user("1", "-c", QUIET_IMPORT),
        "users_level": _start_as_a_user(
            "1",
            "-c",
            "from mnist_research import logs;"
            "assert not logs.quiet_tensorflow();"
            "import tensorflow as tf; tf.constant(1) + 1",
            TF_CPP_MIN_LOG_LEVEL="0",
        ),
    }
    return {name: _wait(process) for name, process in started.items()}


@pytest.mark.slow
@ONEDNN
def test_tensorflow_is_quiet_from_its_import_to_its_first_op(imports, onednn):
    quiet = imports[f"quiet{onednn}"]
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


@pytest.mark.slow
def test_a_users_own_tf_log_level_shows_tensorflow_s_lines(imports):
    shown = imports["users_level"]
    assert shown.returncode == 0 and shown.stderr.count(ONEDNN_BANNER) == 2, shown.stderr


@pytest.mark.parametrize("user_level", [None, "1"])
def test_sweep_imports_no_tensorflow_and_gives_its_runs_the_user_s_environment(user_level):
    # The sweep never imports TensorFlow, so it leaves TF_CPP_MIN_LOG_LEVEL as the user
    # set it (or unset) for its runs, which decide for themselves.
    env = {} if user_level is None else {"TF_CPP_MIN_LOG_LEVEL": user_level}
    sweep = _python_as_a_user(
        "1",
        "-c",
        "import os, sys; sys.argv = ['mnist-sweep']; import mnist_research.sweep;"
        "print('tensorflow' in sys.modules, os.environ.get('TF_CPP_MIN_LOG_LEVEL'))",
        **env,
    )
    assert sweep.stdout.split() == ["False", str(user_level)], sweep.stderr


@early
def early_test_search_workers_show_no_tensorflow_noise(npz_dir, folder, environ):
    as_a_user = {k: v for k, v in environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return start(
        [
            *(sys.executable, "-m", "mnist_research.search"),
            "--flagfile=experiments/smoke.flags",
            "--space=experiments/mlp.space",
            "--study=quiet",
            "--trials=1",
            "--workers=2",
            f"--data_dir={npz_dir}",
            f"--output={folder}",
        ],
        env={**as_a_user, "TF_ENABLE_ONEDNN_OPTS": "1"},
    )


@pytest.mark.slow
def test_search_workers_show_no_tensorflow_noise(early_process):
    # Each worker imports TensorFlow in its own process: on a oneDNN machine its banner
    # came once per worker until the workers imported it quietly.
    _, search = early_process
    assert search.returncode == 0, search.stderr[-3000:]
    assert "Trial 0 complete" in search.stderr, search.stderr[-3000:]
    assert not _tensorflow_lines(search.stderr), search.stderr[-3000:]
