"""What a user's terminal shows: the progress bar's numbers, TensorFlow's noise, log format."""

import logging as std_logging
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf
from absl import flags, logging

from mnist_research import logs
from mnist_research.config import ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.data import pipeline
from mnist_research.training import epoch_loop
from mnist_research.training.summaries import Summaries
from mnist_research.training.trainer import Trainer
from tests.helpers import REPO, make_digits

SHOWN = re.compile(r"(\d+)/\d+.*?loss: ([\d.]+) - accuracy: ([\d.]+)")


def _epoch(monkeypatch, interactive: bool):
    """One epoch of 10 steps, 2 per call; returns (totals, recorded bar updates)."""
    tf.keras.utils.set_random_seed(0)
    config = ExperimentConfig(model=ModelConfig(hidden_units=(32,), dropout_rates=(0.1,)),
                              train=TrainConfig(batch_size=32, steps_per_loop=2))
    trainer = Trainer(config, tf.distribute.get_strategy())
    images, labels = make_digits(320)
    train_input = pipeline.TrainInput(images, labels, 32, seed=0)
    updates = []
    make_bar = epoch_loop._progress_bar

    def recording_bar(steps):
        bar = make_bar(steps)
        bar.interval = 0.0  # draw every update, so each one can be checked
        real_update = bar.update

        def update(current, values=None, finalize=None):
            updates.append((current, dict(values)))
            real_update(current, values, finalize)
        bar.update = update
        return bar

    monkeypatch.setattr(epoch_loop, "_progress_bar", recording_bar)
    monkeypatch.setattr(logs, "interactive_output", lambda: interactive)
    batches = epoch_loop.training_batches(trainer, train_input, 1, 1, 10)
    totals, _ = epoch_loop.train_epoch(trainer, batches, 10, Summaries(None), verbose=True)
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
    assert updates[-1][1] == {"loss": totals.loss, "accuracy": totals.accuracy}
    assert len({u[1]["loss"] for u in updates}) > 1
    assert out.endswith("\r\x1b[K"), "the bar is erased for the epoch line"


def test_no_bar_and_no_control_characters_when_stdout_is_not_a_terminal(monkeypatch, capsys):
    _, updates = _epoch(monkeypatch, interactive=False)
    assert updates == []
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("argv, expected", [
    ([], 0), (["--verbosity=1"], 1), (["-v", "2"], 2), (["--verbosity", "-1"], -1),
    (["-v=1", "--epochs=3"], 1), (["--verbosityx=1"], 0), (["--verbosity=x"], 0)])
def test_requested_verbosity(argv, expected):
    assert logs.requested_verbosity(["prog", *argv]) == expected


def test_stderr_filter_drops_only_the_listed_lines(capfd):
    with logs.stderr_without(logs.LIBRARY_LOAD_NOISE):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n")
        os.write(2, b"I0000 00:00:1.2 15 cudart_stub.cc:31] Could not find cuda drivers on your "
                    b"machine, GPU will not be used.\n")
        os.write(2, b"a real problem\n")
        os.write(2, b"To enable the following instructions: AVX2 FMA, in other operations, "
                    b"rebuild TensorFlow with the appropriate compiler flags.\n")
        os.write(2, b"and another\n")
    assert capfd.readouterr().err == "a real problem\nand another\n"


def test_configure_drops_framework_info_and_keeps_warnings():
    handler = logging.get_absl_handler()
    saved_formatter, saved_level = handler.formatter, logging.get_verbosity()
    was_parsed = flags.FLAGS.is_parsed()
    try:
        logs.configure(0)
        tf_file = os.path.join(os.path.dirname(tf.__file__), "python", "x.py")
        record = std_logging.LogRecord("absl", std_logging.INFO, tf_file, 1, "Sharding", (),
                                       None)
        ours = std_logging.LogRecord("absl", std_logging.INFO, __file__, 1, "epoch 1/2", (),
                                     None)
        warning = std_logging.LogRecord("absl", std_logging.WARNING, tf_file, 1, "careful", (),
                                        None)
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


def _python_without_tf_log_level(*args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_command_shows_no_tensorflow_noise_unless_asked(tmp_path):
    output = tmp_path / "b.json"
    quiet = _python_without_tf_log_level("-m", "mnist_research.benchmark", "--smoke", f"--output={output}")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    # Only the project's own lines (e.g. which train step XLA compiles), ending with the result.
    assert quiet.stderr.endswith(f"Wrote {output}\n")
    noise = ("cuda", "cpu_feature_guard", "oneDNN", "I0000", "W0000", "E0000", "absl::",
             "Sharding callback", "UserWarning")
    assert not [line for line in quiet.stderr.splitlines() if any(n in line for n in noise)]
    # No glog/absl-prefixed line ("I1125 17:00:00.123 ..."): only the project's messages.
    assert not [line for line in quiet.stderr.splitlines() if re.match(r"[IWEF]\d{4} ", line)]
    loud = _python_without_tf_log_level("-m", "mnist_research.benchmark", "--smoke", "--verbosity=1",
                                     f"--output={output}")
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert re.search(r"benchmark\.py:\d+\] Wrote", loud.stderr)  # absl's prefix is back
    assert len(loud.stderr.splitlines()) > 1  # and TensorFlow's own lines with it


@pytest.mark.slow
def test_tensorflow_is_quiet_when_imported_and_only_imported_when_needed():
    quiet = _python_without_tf_log_level(
        "-c",
        "from mnist_research import logs; assert logs.quiet_tensorflow();"
        "import tensorflow as tf; tf.constant(1) + 1")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    sweep = _python_without_tf_log_level(
        "-c",
        "import sys; sys.argv = ['mnist-sweep']; import mnist_research.sweep;"
        "print('tensorflow' in sys.modules)")
    assert sweep.stdout.strip() == "False", sweep.stderr
