"""Train the MNIST classifier with the hand-written loop.

Usage:
  python -m mnist_research.train --flagfile=experiments/baseline.flags \\
      [--data_dir=DIR] [--run_dir=DIR] [--overwrite]

Writes a run directory (see README); rerunning with the same --run_dir resumes.
"""

from __future__ import annotations

import os
import shutil

from absl import flags, logging

from mnist_research import command, experiment_flags
from mnist_research.errors import run_guarded
from mnist_research.training import devices, experiment
from mnist_research.training import run_dir as run_dir_lib

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """The experiment flags, plus where the run goes."""
    experiment_flags.define_experiment_flags(fv)
    flags.DEFINE_string("run_dir", None,
                        "Run directory. Default: <logdir>/<experiment>-<device>-<timestamp>. "
                        "An existing run dir is resumed.", flag_values=fv)
    flags.DEFINE_string("logdir", "runs", "Parent of default run directories.", flag_values=fv)
    flags.DEFINE_boolean("overwrite", False, "Delete an existing --run_dir and start afresh.",
                         flag_values=fv)


def _train() -> int:
    config = experiment_flags.config_from_flags()
    # Logical devices and the precision policy must be set before any TF op.
    devices.configure_devices(config.distribute)
    strategy = devices.create_strategy(config.distribute)
    run_dir = FLAGS.run_dir or run_dir_lib.default_run_dir(
        config.experiment, devices.device_tag(devices.device_info(strategy)), FLAGS.logdir)
    if FLAGS.overwrite and os.path.isdir(run_dir) and devices.is_chief():
        logging.info("--overwrite: deleting %s", run_dir)
        shutil.rmtree(run_dir)
    metrics = experiment.train_and_evaluate(config, run_dir, strategy=strategy,
                                            flagfile_text=experiment_flags.flagfile_text())
    print(f"Test accuracy: {metrics['test_accuracy']:.4f}  Test loss: {metrics['test_loss']:.4f}"
          f"  ({run_dir})")
    return 0


def main(argv):
    command.no_arguments(argv)
    return run_guarded(_train)


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
