"""Every command: importable together in one process, and its --help lists its own flags."""

import importlib
import os
import subprocess
import sys

import pytest
from absl import flags

from tests.helpers import REPO

# Each command and flags its --help must list (its own, with help text).
COMMANDS = {
    "train": [
        "epochs",
        "batch_size",
        "hidden_units",
        "dropout_rates",
        "learning_rate",
        "seed",
        "strategy",
        "data_dir",
        "run_dir",
        "overwrite",
    ],
    "evaluate": ["run_dir", "split", "from_checkpoint", "data_dir", "model"],
    "export": ["run_dir", "format", "data_dir", "logdir"],
    "predict": ["run_dir", "json", "save_preprocessed", "from_checkpoint"],
    "report": ["run_dir", "data_dir", "from_checkpoint"],
    "sweep": ["experiments", "seeds", "experiments_dir", "output", "data_dir"],
    "compare": ["output"],
    "benchmark": ["data_dir", "epochs", "repeats", "smoke", "output"],
    "predict_robustness": ["run_dir", "data_dir", "num", "seed", "only", "examples_dir"],
    "runs": ["logdir", "json"],
    "search": ["space", "study", "trials", "output", "storage", "workers", "pruner", "sampler"],
}


def test_all_commands_import_in_one_process_and_define_their_flags():
    modules = {name: importlib.import_module(f"mnist_research.{name}") for name in COMMANDS}
    defined_by_project = [
        module for module in flags.FLAGS.flags_by_module_dict() if "mnist_research" in module
    ]
    assert not defined_by_project, "a command defined flags at import time"
    for name, module in modules.items():
        fv = flags.FlagValues()
        module.define_flags(fv)
        missing = [flag for flag in COMMANDS[name] if flag not in fv]
        assert not missing, f"{name} lacks {missing}"
        help_text = fv.get_help()
        for flag in COMMANDS[name]:
            assert f"--{flag}" in help_text or f"--[no]{flag}" in help_text
            assert fv[flag].help, f"{name} --{flag} has no help text"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train", "predict", "benchmark"])
def test_help_lists_the_command_flags(name):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", f"mnist_research.{name}", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 0
    for flag in COMMANDS[name]:
        assert f"--{flag}" in result.stdout or f"--[no]{flag}" in result.stdout, flag
    # Only the command's own flags: none of absl's test or TPU flags.
    assert "--test_srcdir" not in result.stdout and "--tpu" not in result.stdout
    assert f"\n{name} flags:\n" in result.stdout
    if name == "train":
        assert "\nmodel flags:\n" in result.stdout


@pytest.mark.slow
def test_console_script_help_lists_flags():
    script = os.path.join(os.path.dirname(sys.executable), "mnist-train")
    if not os.path.exists(script):
        pytest.skip("console scripts not installed in this environment")
    result = subprocess.run(
        [script, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert "Traceback" not in result.stderr
    assert "--epochs" in result.stdout and "Train the MNIST classifier" in result.stdout


def test_commands_parse_their_flags_before_importing_tensorflow():
    """A missing or bad argument fails in a second, not after TensorFlow's ~5 s import."""
    script = (
        "import sys\n"
        "from absl import flags\n"
        "import mnist_research.evaluate, mnist_research.predict, mnist_research.report\n"
        "import mnist_research.compare, mnist_research.runs, mnist_research.train\n"
        "import mnist_research.export\n"
        "import mnist_research.search\n"
        "for m in (mnist_research.evaluate, mnist_research.predict, mnist_research.report,\n"
        "          mnist_research.train, mnist_research.export, mnist_research.search):\n"
        "    m.define_flags(flags.FlagValues())\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


def test_train_help_groups_the_experiment_flags_by_section():
    from mnist_research import command_help, train

    fv = flags.FlagValues()
    train.define_flags(fv)
    text = command_help.help_text(fv, sorted(fv), "Train it.\n", "train")
    titles = [line for line in text.splitlines() if line.endswith(" flags:")]
    assert titles == [
        "train flags:",
        "data flags:",
        "model flags:",
        "training flags:",
        "devices and distribution flags:",
    ]
    assert text.startswith("Train it.\n\ntrain flags:\n")

    def group(title):
        return text.split(f"\n{title}:\n")[1].split("\n\n")[0]

    assert "--run_dir" in group("train flags") and "--experiment" in group("train flags")
    assert "--hidden_units" in group("model flags") and "--epochs" not in group("model flags")
    assert "--epochs" in group("training flags") and "--data_dir" in group("data flags")
    assert "--strategy" in group("devices and distribution flags")
    listed = [line.split(":")[0].strip() for line in text.splitlines() if line.startswith("  --")]
    assert sorted(n.removeprefix("--[no]").removeprefix("--") for n in listed) == sorted(fv)


def test_a_command_with_some_experiment_flags_lists_them_as_its_own():
    from mnist_research import command_help, evaluate

    fv = flags.FlagValues()
    evaluate.define_flags(fv)
    text = command_help.help_text(fv, sorted(fv), None, "evaluate")
    assert [line for line in text.splitlines() if line.endswith(" flags:")] == ["evaluate flags:"]
    assert "--data_dir" in text and "--split" in text


@pytest.mark.parametrize(
    "argv", [["--flagfile={flagfile}"], ["--help=true"], ["--epochs=3", "-h"], ["--helpshort"]]
)
def test_help_asked_any_way_prints_the_command_help_and_exits_0(argv, tmp_path, capsys):
    from mnist_research import command

    flagfile = tmp_path / "help.flags"
    flagfile.write_text("# asks for the help\n--help\n")
    with pytest.raises(SystemExit) as exited:
        command._parse_flags(["prog", *(a.format(flagfile=flagfile) for a in argv)], lambda: "H\n")
    assert exited.value.code == 0 and capsys.readouterr().out == "H\n"
