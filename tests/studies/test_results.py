"""What a study found: trials.md's timing and importances, and the figures beside it."""

import datetime
import os
import subprocess
import sys

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from mnist_research import output_files
from mnist_research.config import ExperimentConfig
from mnist_research.config import flags as experiment_flags
from mnist_research.studies import results, space, study
from tests.helpers import REPO

START = datetime.datetime(2026, 12, 6, 12, 0, 0)
DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
    "optimizer": CategoricalDistribution(["adam", "adamw"]),
}


def _settings(tmp_path):
    base = ExperimentConfig()
    folder = str(tmp_path / "study")
    return study.StudySettings(
        name="study",
        folder=folder,
        storage=os.path.join(folder, study.JOURNAL_FILE),
        space=space.parse(
            "learning_rate = log(1e-4, 1e-2)\noptimizer = choice(adam | adamw)", "space.txt", base
        ),
        base_flags=experiment_flags.flagfile_text(base),
        trials=4,
    )


def _add(opened, folder, start, end, state, run_dir, value=None, train_seconds=None, lr=1e-3):
    attrs = {study.RUN_DIR: os.path.join(folder, run_dir)}
    if train_seconds is not None:
        attrs.update(train_seconds=train_seconds, best_val_accuracy=value, test_accuracy=value)
    trial = optuna.trial.create_trial(
        state=state,
        value=value,
        params={"learning_rate": lr, "optimizer": "adam" if lr < 2e-3 else "adamw"},
        distributions=DISTRIBUTIONS,
        user_attrs=attrs,
    )
    trial.datetime_start = START + datetime.timedelta(seconds=start)
    trial.datetime_complete = START + datetime.timedelta(seconds=end)
    opened.add_trial(trial)


def test_trials_md_gives_wall_time_epoch_share_throughput_importances_and_figures(tmp_path):
    settings = _settings(tmp_path)
    opened = study.open_study(settings)
    folder = settings.folder
    _add(opened, folder, 0, 100, TrialState.COMPLETE, "trial-000", 0.97, 60.0, lr=1e-3)
    _add(opened, folder, 100, 130, TrialState.FAIL, "trial-001")  # stopped by a signal
    _add(opened, folder, 130, 230, TrialState.COMPLETE, "trial-002", 0.98, 80.0, lr=4e-3)
    # Trial 3 continued trial 1's run dir: its epochs against both trials' 30 + 70 s.
    _add(opened, folder, 230, 300, TrialState.COMPLETE, "trial-001", 0.96, 90.0, lr=2e-4)

    paths = results.write(opened, settings)

    text = open(paths["table"]).read()
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert "| 100.0 | 60% | trial-000 |" in rows["| 0"]
    assert "| 30.0 | - | trial-001 |" in rows["| 1"]
    assert "| 70.0 | 90% | trial-001 |" in rows["| 3"]
    # 3 finished in 300 s; their run dirs' 300 s of wall time held 60 + 80 + 90 s of epochs.
    assert (
        "3 trials finished (complete or pruned) in 5.0 min of study wall time (first start to "
        "last end): 36.0 trials per hour. Of their 300 s of wall time, 23% was outside the "
        "epochs" in text
    )
    importances = results.param_importances(opened)
    assert set(importances) == {"learning_rate", "optimizer"}
    for name, value in importances.items():
        assert f"| {name} | {value:.3f} |" in text
    assert "## Parameter importances" in text and "PED-ANOVA over the 3 completed" in text
    for name in ("history", "parallel", "importances"):
        assert paths[name] == os.path.join(folder, results.FIGURES[name])
        # Written by save_figure.
        assert output_files.starts_with_mark(paths[name], output_files.FIGURE_MARK)
        assert os.path.getsize(paths[name]) > 10_000
    assert "trial 2 (best validation accuracy 0.9800)" in open(paths["best_flags"]).read()


def test_one_completed_trial_gets_a_table_and_a_line_instead_of_importances(tmp_path):
    settings = _settings(tmp_path)
    opened = study.open_study(settings)
    _add(opened, settings.folder, 0, 50, TrialState.COMPLETE, "trial-000", 0.97, 40.0)

    paths = results.write(opened, settings)

    assert sorted(paths) == ["best_flags", "table"]
    text = open(paths["table"]).read()
    assert text.rstrip().endswith(
        "Parameter importances and figures need 2 completed trials; 1 completed so far."
    )
    assert not any(f.endswith(".png") for f in os.listdir(settings.folder))


def test_equal_values_get_no_importances(tmp_path):
    settings = _settings(tmp_path)
    opened = study.open_study(settings)
    _add(opened, settings.folder, 0, 50, TrialState.COMPLETE, "trial-000", 1.0, 40.0, lr=1e-3)
    _add(opened, settings.folder, 50, 90, TrialState.COMPLETE, "trial-001", 1.0, 30.0, lr=5e-3)

    paths = results.write(opened, settings)

    assert sorted(paths) == ["best_flags", "history", "parallel", "table"]
    text = open(paths["table"]).read()
    assert text.rstrip().endswith(
        "No parameter importances: all 2 completed trials reached 1.0000."
    )


def test_a_worker_imports_no_figure_drawing():
    # TensorFlow itself imports matplotlib; the figures' code (optuna.visualization, seaborn,
    # the project's figures and results) is left to the parent process that writes results.
    drawing = ("seaborn", "optuna.visualization", "mnist_research.analysis", results.__name__)
    code = (
        "import sys\nimport mnist_research.search\nfrom mnist_research.studies import trials\n"
        f"print([m for m in sys.modules if m.startswith({drawing!r})])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
