"""The optimisation recipe and loop mechanics: :class:`TrainConfig`."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from mnist_research.config.checks import (
    check,
    check_at_least,
    check_choice,
    check_positive,
    check_types,
)

LR_SCHEDULES = ("constant", "cosine", "step")
# Seeds feed NumPy's legacy seeding, which takes 0 <= seed < 2**32.
MAX_SEED = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe and loop mechanics.

    Attributes:
      epochs: number of passes over the training split.
      batch_size: *global* batch size, split across replicas.
      eval_batch_size: global batch size of the validation and test passes. It
        changes results only by float rounding (inference mode: no dropout,
        BN's moving statistics), and speed: on a 2-core CPU a 12,000-image
        validation pass took 0.096 s at 128 and 0.064 s at 2,000 images per batch.
      learning_rate: Adam's (initial) learning rate.
      lr_schedule: ``constant``; ``cosine`` (decays to 0 over all training
        steps); ``step`` (×0.1 after 50 % and again after 75 % of the steps).
      seed: seeds initialisation, shuffling and dropout.
      deterministic: turn on TensorFlow op determinism (bit-identical reruns).
      steps_per_loop: training steps run inside one ``tf.function`` call; the
        progress bar and step summaries update once per loop.
      summary_every_steps: write train scalars to TensorBoard about every N steps.
      max_to_keep: checkpoints kept in ``checkpoints/``.
      fused_adam: apply Adam with TF's fused kernel (``optimizers.FusedAdam``);
        the same update rule as ``tf.keras.optimizers.Adam``, fewer ops per step.
      jit_compile: compile the per-replica train step with XLA (the
        ``tf.range`` loop around them stays a plain ``tf.function``). Where XLA
        cannot compile a step (several replicas with BatchNormalization), the
        trainer logs why and runs the plain step.
      histograms: write weight, BN-statistic and gradient histograms to TensorBoard.
      histogram_every_epochs: write them after every N-th epoch and after the
        last one.
      profile_steps: ``(start, stop)`` optimizer steps to record with the TF
        profiler (rounded out to whole ``steps_per_loop`` calls); ``()``: none.
      augment: randomly rotate, zoom and translate each training image, seeded
        per (seed, epoch, batch); validation and test images are never augmented.
      early_stopping_patience: stop when validation accuracy has not improved
        for this many epochs (0: train every epoch).
      restore_best: evaluate and export the weights of the epoch with the best
        validation accuracy instead of the last epoch's.
    """

    epochs: int = 15
    batch_size: int = 128
    eval_batch_size: int = 2000
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    seed: int = 42
    deterministic: bool = False
    steps_per_loop: int = 50
    summary_every_steps: int = 100
    max_to_keep: int = 3
    fused_adam: bool = True
    jit_compile: bool = True
    histograms: bool = True
    histogram_every_epochs: int = 5
    profile_steps: Tuple[int, ...] = ()
    augment: bool = False
    early_stopping_patience: int = 0
    restore_best: bool = False

    def histograms_due(self, epoch: int) -> bool:
        """Whether histograms are written after ``epoch`` (1-based)."""
        return self.histograms and (epoch % self.histogram_every_epochs == 0
                                    or epoch == self.epochs)

    def __post_init__(self):
        check_types(self)
        object.__setattr__(self, "profile_steps", tuple(int(s) for s in self.profile_steps))
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check(not self.profile_steps or (len(self.profile_steps) == 2 and
                                         0 < self.profile_steps[0] <= self.profile_steps[1]),
              f"profile_steps must be START,STOP with 0 < START <= STOP, "
              f"got {list(self.profile_steps)}")
        check_positive(self, "epochs", "batch_size", "eval_batch_size", "learning_rate",
                       "steps_per_loop", "summary_every_steps", "max_to_keep")
        check(0 <= self.seed <= MAX_SEED, f"seed must be in [0, 2**32 - 1], got {self.seed}")
        check_positive(self, "histogram_every_epochs")
        check_at_least(self, "early_stopping_patience", 0)
