"""Runs ``mnist_research.train`` with one fault injected (for the kill/disk tests).

Usage: python tests/fault_runner.py FAULT TRAIN_FLAGS...

FAULT is one of:
  kill_before_commit:N  SIGKILL after ckpt-N's files are written but before the
                        ``checkpoint`` state file points at them (mid-checkpoint).
  kill_in_reports       SIGKILL while the third report figure is being written.
"""

import os
import signal
import sys

fault, sys.argv = sys.argv[1], [sys.argv[0], *sys.argv[2:]]

from tensorflow.python.checkpoint import checkpoint_management  # noqa: E402

from mnist_research import train  # noqa: E402
from mnist_research.analysis import figures as reports  # noqa: E402


def die():
    os.kill(os.getpid(), signal.SIGKILL)


if fault.startswith("kill_before_commit:"):
    number = fault.split(":")[1]
    original_update = checkpoint_management.update_checkpoint_state_internal

    def update(save_dir, model_checkpoint_path, *args, **kwargs):
        if model_checkpoint_path.endswith(f"ckpt-{number}"):
            die()
        return original_update(save_dir, model_checkpoint_path, *args, **kwargs)

    checkpoint_management.update_checkpoint_state_internal = update
elif fault == "kill_in_reports":
    original_save = reports.save_figure
    calls = []

    def save_figure(fig, path, dpi=100):
        calls.append(path)
        if len(calls) == 3:
            die()
        return original_save(fig, path, dpi)

    reports.save_figure = save_figure
else:
    raise SystemExit(f"unknown fault {fault}")

train.run()
