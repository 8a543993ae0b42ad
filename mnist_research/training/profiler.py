"""The ``--profile_steps`` hook: TensorFlow's profiler around a range of optimizer steps.

Imported (by ``runner.standard_hooks``) only when the flag asks for a profile.
"""

from __future__ import annotations

import tensorflow as tf
from absl import logging

from mnist_research.training.history import Totals
from mnist_research.training.loop import Hook


class Profiler(Hook):
    """Starts and stops TensorFlow's profiler around ``steps`` (first, last step).

    The profile lands in ``logdir/plugins/profile`` (TensorBoard's Profile tab).
    """

    def __init__(self, steps: tuple[int, ...], logdir: str):
        self.steps, self.logdir, self.running = steps, logdir, False

    def before_steps(self, step: int, num_steps: int) -> None:
        if self.steps and not self.running and step < self.steps[0] <= step + num_steps:
            tf.profiler.experimental.start(self.logdir)
            self.running = True
            logging.info("Profiler on at step %d", step)

    def after_steps(self, step: int, done: int, chunk: Totals, epoch_totals: Totals) -> None:
        if self.running and step >= self.steps[1]:
            self.end()
            self.steps = ()  # profiled once

    def end(self) -> None:
        if self.running:
            tf.profiler.experimental.stop()
            self.running = False
            logging.info("Profile written under %s/plugins/profile", self.logdir)
