"""Train the MNIST classifier with the hand-written loop.

Usage:
  python -m mnist_research.train --flagfile=experiments/baseline.flags \\
      [--data_dir=DIR] [--run_dir=DIR] [--overwrite]

Writes a run directory (see README); rerunning with the same --run_dir resumes.
"""

from __future__ import annotations

import os
import shlex
import sys

from mnist_research import interrupts

if __name__ == "__main__":  # before TensorFlow's import, which takes seconds
    interrupts.exit_while_starting()

from absl import flags  # noqa: E402

from mnist_research import command, experiment_flags  # noqa: E402
from mnist_research.errors import run_guarded  # noqa: E402
from mnist_research.training import checkpoint_files, devices, experiment  # noqa: E402
from mnist_research.training import run_dir as run_dir_lib  # noqa: E402

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """The experiment flags, plus where the run goes."""
    experiment_flags.define_experiment_flags(fv)
    flags.DEFINE_string("run_dir", None,
                        "Run directory. Default: <logdir>/<experiment>-<device>-<timestamp>. "
                        "An existing run dir is resumed.", flag_values=fv)
    flags.DEFINE_string("logdir", "runs", "Parent of default run directories.", flag_values=fv)
    flags.DEFINE_boolean("overwrite", False,
                         "Delete an existing --run_dir's contents and start afresh (only a run "
                         "dir of this project, or an empty directory, is deleted).",
                         flag_values=fv)


def _train() -> int:
    run_dir = FLAGS.run_dir
    try:
        with interrupts.handle_signals():
            config = experiment_flags.config_from_flags()
            # Logical devices and the precision policy must be set before any TF op.
            devices.configure_devices(config.distribute)
            strategy = devices.create_strategy(config.distribute)
            run_dir = run_dir or run_dir_lib.default_run_dir(
                config.experiment, devices.device_tag(devices.device_info(strategy)),
                FLAGS.logdir)
            metrics = experiment.train_and_evaluate(
                config, run_dir, strategy=strategy, overwrite=FLAGS.overwrite,
                flagfile_text=experiment_flags.flagfile_text())
    except interrupts.Interrupted as e:
        _report_interrupted(e, run_dir)
        return e.exit_status
    print(f"Test accuracy: {metrics['test_accuracy']:.4f}  Test loss: {metrics['test_loss']:.4f}"
          f"  ({run_dir})")
    return 0


def _report_interrupted(error: interrupts.Interrupted, run_dir: str | None) -> None:
    """One line: what was kept and the exact command that resumes."""
    if sys.stdout.isatty():
        print(file=sys.stdout, flush=True)  # end the progress bar's line
    latest = None
    if run_dir:
        folder = os.path.join(run_dir, checkpoint_files.CHECKPOINT_DIR)
        latest = (checkpoint_files.read_state(folder)[0]
                  or max(checkpoint_files.numbers_on_disk(folder), default=None))
    kept = (f"the checkpoint of epoch {latest} is kept" if latest
            else "no epoch had finished, so there is no checkpoint yet")
    print(f"{error.name}: stopped; {kept}. Resume with: {resume_command(sys.argv, run_dir)}",
          file=sys.stderr, flush=True)


def resume_command(argv: list[str], run_dir: str | None) -> str:
    """The command line that resumes this run: same flags, ``--run_dir``, no ``--overwrite``."""
    program = os.path.basename(argv[0])
    words = (["python", "-m", "mnist_research.train"]
             if program in ("train.py", "__main__.py") or program.startswith("python")
             else [program])
    args, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        name = arg.lstrip("-").split("=", 1)[0]
        if name in ("overwrite", "nooverwrite"):
            continue
        if name == "run_dir":
            skip = "=" not in arg  # "--run_dir DIR" takes the next word
            continue
        args.append(arg)
    return shlex.join(words + args + ([f"--run_dir={run_dir}"] if run_dir else []))


def main(argv):
    command.no_arguments(argv)
    return run_guarded(_train)


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
