"""Train the MNIST classifier with the hand-written loop.

Usage:
  python -m mnist_research.train --flagfile=experiments/baseline.flags \\
      [--data_dir=DIR] [--run_dir=DIR]

Writes a run directory (see README); rerunning with the same --run_dir resumes.
"""

import os
import shutil

from absl import app, flags, logging

from mnist_research import experiment_flags as cli
from mnist_research.errors import run_guarded
from mnist_research.training import devices as distribute
from mnist_research.training import experiment as train_lib
from mnist_research.training import run_dir as run_dir_lib

FLAGS = flags.FLAGS


def _train() -> int:
    config = cli.config_from_flags()
    # Logical devices and the precision policy must be set before any TF op.
    distribute.configure_devices(config.distribute)
    strategy = distribute.create_strategy(config.distribute)
    run_dir = FLAGS.run_dir or run_dir_lib.default_run_dir(
        config.experiment, distribute.device_tag(distribute.device_info(strategy)), FLAGS.logdir)
    if FLAGS.overwrite and os.path.isdir(run_dir) and distribute.is_chief():
        logging.info("--overwrite: deleting %s", run_dir)
        shutil.rmtree(run_dir)
    metrics = train_lib.train_and_evaluate(config, run_dir, strategy=strategy,
                                           flagfile_text=cli.flagfile_text())
    print(f"Test accuracy: {metrics['test_accuracy']:.4f}  Test loss: {metrics['test_loss']:.4f}"
          f"  ({run_dir})")
    return 0


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    return run_guarded(_train)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
