"""The optimisation recipe and loop mechanics: :class:`TrainConfig`."""

from __future__ import annotations

import dataclasses

from mnist_research.config.checks import check
from mnist_research.config.fields import check_declared, setting
from mnist_research.config.optimizers import OPTIMIZERS

LR_SCHEDULES = ("constant", "cosine", "step")
# Seeds feed NumPy's legacy seeding, which takes 0 <= seed < 2**32.
MAX_SEED = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe and loop mechanics.

    Each field's help, bounds and role are declared with it (``config.fields``).
    Notes the help cannot hold:

    - ``eval_batch_size`` changes results only by float rounding (inference
      mode: no dropout, BN's moving statistics), and speed: on a 2-core CPU a
      12,000-image validation pass took 0.096 s at 128 and 0.064 s at 2,000
      images per batch.
    - ``jit_compile`` compiles the per-replica train step with XLA (the
      ``tf.range`` loop around it stays a plain ``tf.function``); where XLA
      cannot compile a step (several replicas with BatchNormalization), the
      trainer logs why and runs the plain step.
    - ``profile_steps`` is rounded out to whole ``steps_per_loop`` calls.
    - ``augment`` is seeded per (seed, epoch, batch); validation and test
      images are never augmented.
    """

    epochs: int = setting(15, "Training epochs.", minimum=1, hparam="run", identity=False)
    batch_size: int = setting(
        128, "Global batch size (across replicas).", minimum=1, hparam="optimizer", identity=True
    )
    eval_batch_size: int = setting(
        2000,
        "Global batch size of the validation and test passes (speed only; results do "
        "not depend on it).",
        minimum=1,
        hparam=None,
        identity=False,
    )
    learning_rate: float = setting(
        1e-3, "(Initial) learning rate.", above=0.0, hparam="optimizer", identity=True
    )
    optimizer: str = setting(
        "adam",
        "; ".join(f"{entry.name}: {entry.help}" for entry in OPTIMIZERS.values()) + ".",
        choices=OPTIMIZERS,
        hparam="optimizer",
        identity=True,
    )
    weight_decay: float = setting(
        0.0,
        "Decoupled weight decay: each step multiplies every trainable weight by (1 - lr * decay).",
        minimum=0.0,
        only_with={"optimizer": ("adamw", "sgd")},
        hparam="optimizer",
        identity=True,
    )
    momentum: float = setting(
        0.0,
        "SGD momentum (0: plain SGD).",
        minimum=0.0,
        below=1.0,
        only_with={"optimizer": ("sgd",)},
        hparam="optimizer",
        identity=True,
    )
    clip_global_norm: float = setting(
        0.0,
        "Clip the gradient (summed over replicas) to this global norm before the "
        "optimizer sees it (0: off).",
        minimum=0.0,
        hparam="optimizer",
        identity=True,
    )
    label_smoothing: float = setting(
        0.0,
        "Label smoothing of the training loss: targets (1 - s) * one_hot + s / classes.",
        minimum=0.0,
        below=1.0,
        hparam="optimizer",
        identity=True,
    )
    lr_schedule: str = setting(
        "constant",
        "constant; cosine (to 0 over training); step (x0.1 at 50% and 75% of the steps).",
        choices=LR_SCHEDULES,
        hparam="optimizer",
        identity=True,
    )
    seed: int = setting(
        42,
        "Seed for initialisation, shuffling and dropout.",
        minimum=0,
        maximum=MAX_SEED,
        hparam="experiment",
        identity=True,
    )
    deterministic: bool = setting(
        False,
        "Enable TF op determinism (bit-identical reruns on one machine; slower).",
        hparam=None,
        identity=True,
    )
    steps_per_loop: int = setting(
        50,
        "Training steps per tf.function call (1 = one call per batch); the progress bar "
        "and step summaries update once per call.",
        minimum=1,
        hparam=None,
        identity=False,
    )
    summary_every_steps: int = setting(
        100,
        "Write step-level training scalars about every N steps.",
        minimum=1,
        hparam=None,
        identity=False,
    )
    max_to_keep: int = setting(
        3, "Checkpoints kept in checkpoints/.", flag=False, minimum=1, hparam=None, identity=False
    )
    fused_adam: bool = setting(
        True,
        "Apply Adam with TF's fused kernel (same update rule as Keras Adam; faster).",
        only_with={"optimizer": ("adam",)},
        hparam=None,
        identity=False,
    )
    jit_compile: bool = setting(
        True,
        "Compile the per-replica train step with XLA (faster on CPUs; where XLA cannot "
        "compile it, the plain step runs and the log says why). --nojit_compile "
        "--steps_per_loop=1 is the plain, readable path.",
        hparam=None,
        # Part of the resume identity: the XLA step draws other dropout masks than the
        # plain one, so switching it mid-run would silently change the experiment.
        identity=True,
    )
    histograms: bool = setting(
        True,
        "Write weight, BN-statistic and gradient histograms to TensorBoard.",
        hparam=None,
        identity=False,
    )
    histogram_every_epochs: int = setting(
        5,
        "Write the histograms after every N-th epoch and after the last one.",
        minimum=1,
        hparam=None,
        identity=False,
    )
    profile_steps: tuple[int, ...] = setting(
        (),
        "START,STOP: record a TF profile for these optimizer steps (view it in "
        "TensorBoard's Profile tab; needs `pip install tensorboard-plugin-profile`).",
        minimum=1,
        hparam=None,
        identity=False,
    )
    augment: bool = setting(
        False,
        "Randomly rotate, zoom and translate training images (seeded per seed, epoch "
        "and batch); validation and test images are never augmented.",
        hparam="run",
        identity=True,
    )
    early_stopping_patience: int = setting(
        0,
        "Stop when validation accuracy has not improved for N epochs (0: off).",
        minimum=0,
        hparam="run",
        identity=False,
    )
    restore_best: bool = setting(
        False,
        "Test and export the weights of the best-validation-accuracy epoch (kept in "
        "checkpoints/best/) instead of the last epoch's.",
        hparam="run",
        identity=False,
    )

    def histograms_due(self, epoch: int) -> bool:
        """Whether histograms are written after ``epoch`` (1-based)."""
        return self.histograms and (
            epoch % self.histogram_every_epochs == 0 or epoch == self.epochs
        )

    def __post_init__(self):
        if isinstance(self.profile_steps, list):
            object.__setattr__(self, "profile_steps", tuple(self.profile_steps))
        check_declared(self)
        object.__setattr__(self, "profile_steps", tuple(int(s) for s in self.profile_steps))
        check(
            not self.profile_steps
            or (
                len(self.profile_steps) == 2 and 0 < self.profile_steps[0] <= self.profile_steps[1]
            ),
            f"profile_steps must be START,STOP with 0 < START <= STOP, "
            f"got {list(self.profile_steps)}",
        )
