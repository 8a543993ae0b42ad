"""What a study found, written into its folder: the table of trials, ``best.flags``, figures.

``trials.md`` holds one row a trial (its values, accuracies, wall time and the
share of it inside its epochs), a line of throughput (trials per hour, time
outside the epochs), and the parameter importances. Three figures by
``optuna.visualization.matplotlib`` go beside it once 2 trials completed:
``optimization_history.png``, ``parallel_coordinate.png`` and
``param_importances.png`` (the last when their values differ). Only the
``search`` command's parent process writes them: the drawing code is imported
here, in the function that draws, never by a worker.
"""

from __future__ import annotations

import json
import os
import warnings

import optuna
from optuna.trial import TrialState

from mnist_research import files
from mnist_research.studies.study import RUN_DIR, StudySettings, base_lines, run_dir_name

TABLE_FILE = "trials.md"
BEST_FLAGS_FILE = "best.flags"
FIGURES = {
    "history": "optimization_history.png",
    "parallel": "parallel_coordinate.png",
    "importances": "param_importances.png",
}
# A trial's user attribute: its run's summed epoch times (``metrics.json["train_seconds"]``).
TRAIN_SECONDS = "train_seconds"
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_TARGET = "best validation accuracy"  # the objective, as the figures name it


def write(study: optuna.Study, settings: StudySettings) -> dict[str, str]:
    """Writes ``trials.md``, ``best.flags`` and the figures (the last two once a trial completed).

    Returns:
      Name -> path of what was written (``table``, ``best_flags``, and one per figure).
    """
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # Importances need values that differ: of equal ones each parameter "explains" as much.
    differ = len({t.value for t in complete}) >= 2
    importances = param_importances(study) if differ else {}
    paths = {"table": os.path.join(settings.folder, TABLE_FILE)}
    text = "\n".join([table(trials, settings.space), throughput(trials), "", ""])
    files.atomic_write_text(paths["table"], text + importance_text(importances, complete))
    if complete:
        best = max(complete, key=lambda t: (t.value, -t.number))
        paths["best_flags"] = os.path.join(settings.folder, BEST_FLAGS_FILE)
        files.atomic_write_text(paths["best_flags"], best_flags(best, settings))
    if len(complete) >= 2:
        paths.update(draw(study, settings.folder, bool(importances)))
    return paths


def table(trials: list, space) -> str:
    """A Markdown table: one row a trial, its parameters, accuracies, wall time and epoch share."""
    flags = [p.flag for p in space.parameters]
    header = [
        "trial",
        "state",
        *flags,
        "best val acc",
        "test acc",
        "wall s",
        "in epochs",
        "run dir",
    ]
    rows = [header, ["---"] * len(header)]
    walls = _wall_by_run_dir(trials)
    for t in trials:
        attrs, epochs = t.user_attrs, _train_seconds(t)
        wall = walls.get(_run_dir(t)) if t.state in _FINISHED else None
        rows.append(
            [
                str(t.number),
                t.state.name.lower(),
                *(_cell(t.params.get(flag)) for flag in flags),
                _cell(attrs.get("best_val_accuracy"), "{:.4f}"),
                _cell(attrs.get("test_accuracy"), "{:.4f}"),
                _cell(_seconds(t), "{:.1f}"),
                _cell(epochs / wall if epochs is not None and wall else None, "{:.0%}"),
                _run_dir(t),
            ]
        )
    note = (
        "wall s: the trial's start to its end in the study; in epochs: the share of its run "
        "dir's wall time (a continued trial's predecessors included) inside its epochs."
    )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n\n" + note + "\n"


def throughput(trials: list) -> str:
    """One line: finished trials per hour of the study's wall time, and time outside epochs."""
    timed = [t for t in trials if t.datetime_start and t.datetime_complete]
    finished = [t for t in trials if t.state in _FINISHED]
    if not timed:
        return "No trial has finished yet."
    hours = (
        max(t.datetime_complete for t in timed) - min(t.datetime_start for t in timed)
    ).total_seconds() / 3600
    line = (
        f"{len(finished)} trials finished (complete or pruned) in {60 * hours:.1f} min of "
        f"study wall time (first start to last end)"
    )
    if hours > 0:
        line += f": {len(finished) / hours:.1f} trials per hour"
    # Each finished run dir once: its epoch time against the wall time of all its trials.
    walls = _wall_by_run_dir(trials)
    epochs = {_run_dir(t): _train_seconds(t) for t in finished}
    known = {d: s for d, s in epochs.items() if s is not None and walls.get(d)}
    if known:
        wall = sum(walls[d] for d in known)
        outside = 1 - sum(known.values()) / wall
        line += (
            f". Of their {wall:.0f} s of wall time, {outside:.0%} was outside the epochs "
            f"(starting the run, test evaluation, export, reports)"
        )
    return line + "."


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Each parameter's importance to the objective over the completed trials (PED-ANOVA).

    Optuna's default evaluator, fANOVA, fits scikit-learn's random forests;
    PED-ANOVA needs nothing more than Optuna and numpy.
    """
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.importance.get_param_importances(study, evaluator=evaluator)


def importance_text(importances: dict[str, float], complete: list) -> str:
    """The importances as a Markdown section, or one line saying why there are none."""
    completed = len(complete)
    if completed < 2:
        return (
            f"Parameter importances and figures need 2 completed trials; "
            f"{completed} completed so far.\n"
        )
    if not importances:
        return (
            f"No parameter importances: all {completed} completed trials reached "
            f"{complete[0].value:.4f}.\n"
        )
    rows = [f"| {name} | {value:.3f} |" for name, value in importances.items()]
    return "\n".join(
        [
            "## Parameter importances",
            "",
            f"PED-ANOVA over the {completed} completed trials (Optuna's "
            "PedAnovaImportanceEvaluator): how differently each parameter's values are "
            "spread among the best 10% of trials than among all of them, normalised to sum "
            "to 1. A guide to where to search next, not a test: with few trials it is noisy.",
            "",
            "| parameter | importance |",
            "| --- | --- |",
            *rows,
            "",
        ]
    )


def draw(study: optuna.Study, folder: str, with_importances: bool) -> dict[str, str]:
    """Writes the figures into ``folder``; name -> path."""
    from optuna.visualization import matplotlib as optuna_plots

    from mnist_research.analysis import figures

    drawn = {
        "history": lambda: optuna_plots.plot_optimization_history(study, target_name=_TARGET),
        "parallel": lambda: optuna_plots.plot_parallel_coordinate(study, target_name=_TARGET),
    }
    if with_importances:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        drawn["importances"] = lambda: optuna_plots.plot_param_importances(
            study, evaluator=evaluator, target_name=_TARGET
        )
    # Each parallel axis carries its own tick labels: 2 inches apart they do not overlap.
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    parallel_width = max(8, 2 * (1 + len({p for t in complete for p in t.params})))
    paths = {}
    for name, plot in drawn.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fig = plot().figure
        fig.set_size_inches(parallel_width if name == "parallel" else 8, 5.5)
        paths[name] = figures.save_figure(fig, os.path.join(folder, FIGURES[name]))
    return paths


def best_flags(best, settings: StudySettings) -> str:
    """A flagfile that reproduces the best trial: the base recipe, then its sampled values."""
    chosen = settings.space.flag_arguments(best.params)
    return (
        "\n".join(
            [
                f"# Study {settings.name}: the best of its completed trials, trial {best.number} "
                f"(best validation accuracy {best.value:.4f}), in {_run_dir(best)}/.",
                "# Train it again with: python -m mnist_research.train --flagfile=best.flags",
                "# The base recipe:",
                *base_lines(settings.base_flags),
                "# The values the study chose:",
                *chosen,
            ]
        )
        + "\n"
    )


def _seconds(trial) -> float | None:
    """The trial's wall time: its ``datetime_complete - datetime_start``."""
    return trial.duration.total_seconds() if trial.duration else None


def _wall_by_run_dir(trials: list) -> dict[str, float]:
    """Run dir name -> the summed wall time of the trials that trained in it."""
    walls: dict[str, float] = {}
    for t in trials:
        if (seconds := _seconds(t)) is not None:
            walls[_run_dir(t)] = walls.get(_run_dir(t), 0.0) + seconds
    return walls


def _train_seconds(trial) -> float | None:
    """The run's summed epoch times: the trial's record, else its run dir's ``metrics.json``."""
    if TRAIN_SECONDS in trial.user_attrs:
        return float(trial.user_attrs[TRAIN_SECONDS])
    run_dir = trial.user_attrs.get(RUN_DIR)
    try:  # a study run before the trials recorded it, on this machine
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            return float(json.load(f)["train_seconds"])
    except (TypeError, OSError, ValueError, KeyError):
        return None


def _run_dir(trial) -> str:
    """The trial's run dir's name (a continued trial has its predecessor's)."""
    return os.path.basename(trial.user_attrs.get(RUN_DIR) or run_dir_name(trial.number))


def _cell(value, form: str = "{}") -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) and form == "{}" else form.format(value)
