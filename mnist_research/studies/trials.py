"""A study's worker: takes trials until the study is full, each an ordinary training run.

Each trial is the base recipe with the sampled values, trained by
``runner.train_and_evaluate`` into ``STUDY/trial-<number>`` in this process (one
process keeps TensorFlow loaded from trial to trial). A :class:`Pruning` hook
reports the validation accuracy of every epoch to the study and stops the run
when the study's pruner says so; the run then finishes as any run does (test
evaluation, export, reports) and its ``metrics.json`` says ``"pruned": true``.
The objective is the run's best validation accuracy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Sequence

import optuna
import tensorflow as tf
from absl import app, flags, logging
from optuna.trial import TrialState

from mnist_research import interrupts
from mnist_research.config import ExperimentConfig, saved
from mnist_research.config import flags as experiment_flags
from mnist_research.errors import ConfigError, NonFiniteLossError, one_line
from mnist_research.studies import claims
from mnist_research.studies import study as study_lib
from mnist_research.training import history as history_lib
from mnist_research.training import loop, runner


class Pruning(loop.Hook):
    """Reports each epoch's validation accuracy to the trial; stops when it should be pruned.

    A continued trial first reports the epochs its run dir's checkpoint holds.
    """

    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self.reported = 0
        self.pruned_after: int | None = None

    def report(self, history: history_lib.History) -> None:
        """Reports the epochs of ``history`` not reported yet."""
        for epoch in range(self.reported + 1, len(history["val_accuracy"]) + 1):
            self.trial.report(history["val_accuracy"][epoch - 1], epoch)
        self.reported = len(history["val_accuracy"])

    def after_epoch(self, epoch: int, history: history_lib.History) -> None:
        self.report(history)

    def should_stop(self, history: history_lib.History) -> bool:
        self.report(history)
        epochs = len(history["val_accuracy"])
        if epochs and self.trial.should_prune():
            self.pruned_after = epochs
            logging.info("Trial %d pruned after epoch %d", self.trial.number, epochs)
            return True
        return False

    def unless_pruned(self, action: runner.EndOfRunAction) -> runner.EndOfRunAction:
        """``action``, skipped when the trial was pruned."""

        def write(run: runner.RunContext, metrics: dict, test) -> None:
            if self.pruned_after is None:
                action.write(run, metrics, test)

        return dataclasses.replace(action, write=write)

    def record(self, run: runner.RunContext, metrics: dict, test) -> None:
        """An end-of-run action's ``write``: ``metrics.json`` says whether the run was pruned."""
        metrics["pruned"] = self.pruned_after is not None


def trial_config(base_flags: str, arguments: Sequence[str]) -> ExperimentConfig:
    """The base recipe's flags with ``arguments`` after them, as a validated config.

    Raises:
      ConfigError: the combination is refused (the config's own message).
    """
    try:
        return saved.config_from_arguments([*study_lib.base_lines(base_flags), *arguments])
    except (flags.Error, app.UsageError) as e:
        raise ConfigError(f"{' '.join(arguments) or 'the base recipe'}: {e}") from None


@dataclasses.dataclass
class Worker:
    """Runs trials of one study in this process.

    Attributes:
      study: the opened study.
      settings: what the study is.
      actions: each run's end-of-run actions (the export).
      completed_only: the end-of-run actions a pruned trial skips (the reports:
        ``python -m mnist_research.report --run_dir=TRIAL`` draws them when wanted;
        on a trial pruned after a few epochs they took as long as its training).
      verbose: show each run's progress bar.
    """

    study: optuna.Study
    settings: study_lib.StudySettings
    actions: Sequence[runner.EndOfRunAction] = ()
    completed_only: Sequence[runner.EndOfRunAction] = ()
    verbose: bool = True

    def run(self) -> int:
        """Takes trials until the study holds ``settings.trials``; returns how many ran here."""
        base = trial_config(self.settings.base_flags, [])
        done = 0
        while (trial := claims.next_trial(self.study, self.settings)) is not None:
            with claims.beating(trial):
                self.run_trial(trial, base)
            done += 1
        return done

    def run_trial(self, trial: optuna.Trial, base: ExperimentConfig) -> None:
        """Samples, trains and tells the study how the trial ended."""
        chosen = self.settings.space.sample(trial, base)
        arguments = self.settings.space.flag_arguments(chosen)
        # A trial that continues an interrupted one was queued with that one's run dir.
        run_dir = trial.user_attrs.get(study_lib.RUN_DIR) or os.path.join(
            self.settings.folder, study_lib.run_dir_name(trial.number)
        )
        trial.set_user_attr(study_lib.RUN_DIR, run_dir)
        logging.info("Trial %d started: %s -> %s", trial.number, " ".join(arguments), run_dir)
        pruning = Pruning(trial)
        try:
            config = trial_config(self.settings.base_flags, arguments)
            metrics = self._train(config, run_dir, pruning)
        except interrupts.Interrupted:
            # The next worker to ask continues the run dir from its last checkpoint. A trial
            # another worker failed meanwhile (its heartbeats were late) is left to it: that
            # worker queued the continuation.
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                trial.set_user_attr(study_lib.INTERRUPTED, True)
            claims.requeue(self.study, trial, self.settings.folder)
            raise
        except (ConfigError, NonFiniteLossError) as e:
            logging.warning("Trial %d failed: %s", trial.number, one_line(e))
            trial.set_user_attr(study_lib.ERROR, one_line(e))
            self.study.tell(trial, state=TrialState.FAIL)
            return
        except BaseException:
            claims.fail(self.study, trial.number)
            raise
        finally:
            tf.keras.backend.clear_session()  # the next trial builds its model afresh
        try:
            for key in ("best_val_accuracy", "test_accuracy", "epochs_completed", "train_seconds"):
                trial.set_user_attr(key, metrics[key])
            if metrics.get("pruned"):
                self.study.tell(trial, state=TrialState.PRUNED)
            else:
                self.study.tell(trial, metrics["best_val_accuracy"])
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            # Failed when read (ValueError), or as written: this process's heartbeats were
            # late by more than the grace period (a stalled machine), and another worker took
            # it for dead.
            logging.warning(
                "Trial %d finished (%s is complete), but the study had already failed it and "
                "queued it again",
                trial.number,
                run_dir,
            )
            return
        logging.info(
            "Trial %d %s: best validation accuracy %.4f, test accuracy %.4f",
            trial.number,
            "pruned" if metrics.get("pruned") else "complete",
            metrics["best_val_accuracy"],
            metrics["test_accuracy"],
        )

    def _train(self, config: ExperimentConfig, run_dir: str, pruning: Pruning) -> dict:
        record = runner.EndOfRunAction("recording the pruning", pruning.record)
        return runner.train_and_evaluate(
            config,
            run_dir,
            flagfile_text=experiment_flags.flagfile_text(config),
            verbose=self.verbose,
            actions=[
                *self.actions,
                *(pruning.unless_pruned(action) for action in self.completed_only),
                record,
            ],
            hooks_with=lambda standard: [*standard, pruning],
        )
