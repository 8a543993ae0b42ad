"""Train the MNIST classifier with the hand-written loop.

Usage:
  python -m mnist_research.train --flagfile=experiments/baseline.flags \\
      [--data_dir=DIR] [--run_dir=DIR | --resume] [--overwrite]

Writes a run directory (docs/run_directory.md). It prints the command that resumes the run
(the same command with --run_dir); --resume continues the newest unfinished run
of the same experiment under --logdir instead of starting a new one.
"""

from __future__ import annotations

import os
import sys

from mnist_research import interrupts, logs

if __name__ == "__main__":  # before TensorFlow's import, which takes seconds
    interrupts.exit_while_starting()

from absl import app, flags, logging

from mnist_research import command
from mnist_research.config import flags as experiment_flags
from mnist_research.errors import RunDirError
from mnist_research.rundir import layout

# The training library (and so TensorFlow, whose import takes seconds) is imported inside
# the functions below, after the flags are parsed and checked: a bad argument fails at once.

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """The experiment flags, plus where the run goes."""
    experiment_flags.define_experiment_flags(fv)
    flags.DEFINE_string(
        "run_dir",
        None,
        "Run directory. Default: <logdir>/<experiment>-<device>-<timestamp>. "
        "An existing run dir is resumed.",
        flag_values=fv,
    )
    command.define_logdir_flag(fv, "Parent of default run directories.")
    flags.DEFINE_boolean(
        "overwrite",
        False,
        "Delete an existing --run_dir's contents and start afresh (only a run "
        "dir of this project, or an empty directory, is deleted).",
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "resume",
        False,
        "Continue the newest unfinished run of this experiment (same model and "
        "recipe) under --logdir; start a new run if there is none.",
        flag_values=fv,
    )


def _train(instrument=None) -> int:
    run_dir = FLAGS.run_dir
    try:
        with interrupts.handle_signals(lambda e: _interrupted_line(e, run_dir, loaded_only=True)):
            config = experiment_flags.config_from_flags()
            _check_run_dir_flags()
            logs.quiet_tensorflow()
            from mnist_research import run_outputs
            from mnist_research.training import devices, resume, runner

            # Logical devices and the precision policy must be set before any TF op.
            devices.configure_devices(config.distribute)
            strategy = devices.create_strategy(config.distribute)
            run_dir = _choose_run_dir(config, strategy)
            hooks_with, actions = None, run_outputs.end_of_run_actions()
            if instrument is not None:
                hooks_with, actions = instrument.hooks, instrument.actions(actions)
            metrics = runner.train_and_evaluate(
                config,
                run_dir,
                strategy=strategy,
                overwrite=FLAGS.overwrite,
                flagfile_text=experiment_flags.flagfile_text(config),
                resume_hint=resume.resume_command(run_dir, sys.argv),
                actions=actions,
                hooks_with=hooks_with,
            )
    except interrupts.Interrupted as e:
        _report_interrupted(e, run_dir)
        return e.exit_status
    print(f"Test accuracy: {metrics['test_accuracy']:.4f}  Test loss: {metrics['test_loss']:.4f}")
    if not devices.is_chief():
        print(f"{devices.worker_id()}: done; the chief writes {run_dir}")
        return 0
    missing = [
        path
        for path in (
            os.path.join(run_dir, layout.METRICS_FILE),
            os.path.join(run_dir, "reports", "report.html"),
            os.path.join(run_dir, "export"),
        )
        if not os.path.exists(path)
    ]
    if missing or not metrics.get("finished"):  # the metrics.json this run wrote last
        raise RunDirError(
            f"{run_dir}: the run ended but {', '.join(missing) or 'metrics.json'} "
            f"is missing or unfinished; rerun the command to finish it"
        )
    print(
        f"Written to {run_dir}: report {os.path.join(run_dir, 'reports', 'report.html')}, "
        f"model {os.path.join(run_dir, 'export')}; "
        f"tensorboard --logdir {_tensorboard_logdir(run_dir)}"
    )
    return 0


def _tensorboard_logdir(run_dir: str) -> str:
    """``--logdir`` when the run is one of its folders (TensorBoard shows the run beside
    the others there), else the run dir itself: its parent may be any folder, like /tmp."""
    parent = os.path.dirname(os.path.abspath(run_dir))
    return FLAGS.logdir if parent == os.path.abspath(FLAGS.logdir) else run_dir


def _check_run_dir_flags() -> None:
    """--resume with --run_dir or --overwrite is a usage error."""
    if FLAGS.resume and FLAGS.overwrite:
        raise app.UsageError(
            "--resume continues a run and --overwrite deletes one; give only one of them"
        )
    if FLAGS.resume and FLAGS.run_dir:
        raise app.UsageError("--resume picks the run dir itself; give either --run_dir or --resume")


def _choose_run_dir(config, strategy) -> str:
    """--run_dir; with --resume the newest unfinished run; else a new timestamped one."""
    from mnist_research.training import devices

    if FLAGS.resume:
        from mnist_research.training import existing_run

        found = existing_run.latest_unfinished(FLAGS.logdir, config)
        if found:
            logging.info("--resume: continuing %s", found)
            return found
        logging.info(
            "--resume: no unfinished %s run under %s; starting a new one",
            config.experiment,
            FLAGS.logdir,
        )
    return FLAGS.run_dir or layout.default_run_dir(
        config.experiment, devices.device_info(strategy), FLAGS.logdir
    )


def _report_interrupted(error: interrupts.Interrupted, run_dir: str | None) -> None:
    """One line: what was kept and the exact command that resumes."""
    logs.quiet_tensorflow()  # an interrupt may come before _train imported it
    if sys.stdout.isatty():
        print(file=sys.stdout, flush=True)  # end the progress bar's line
    print(_interrupted_line(error, run_dir), file=sys.stderr, flush=True)


def _interrupted_line(
    error: interrupts.Interrupted, run_dir: str | None, loaded_only: bool = False
) -> str:
    """What was kept and the command that resumes.

    With ``loaded_only`` (the signal watch thread, while the main thread may be
    importing TensorFlow) nothing is imported: a run dir is only chosen once
    ``training.resume``, which writes the line, is loaded.
    """
    if loaded_only:
        resume = sys.modules.get("mnist_research.training.resume")
        if resume is None or not hasattr(resume, "stop_line"):  # absent, or still loading
            return f"{error.name}: stopped while starting; nothing was written"
    else:
        from mnist_research.training import resume
    return resume.stop_line(error.name, run_dir, sys.argv)


main = command.main_without_arguments(_train)


def run(instrument=None) -> None:
    """Runs the command.

    Args:
      instrument: wraps the run's epoch-loop hooks and end-of-run actions:
        ``instrument.hooks(standard_hooks)`` and ``instrument.actions(actions)``
        return the ones to use (``benchmarks.phases`` times them this way).
    """
    instrumented = command.main_without_arguments(lambda: _train(instrument))
    command.run(main if instrument is None else instrumented, define_flags, __doc__)


if __name__ == "__main__":
    run()
