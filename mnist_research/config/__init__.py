"""Every setting of a run, one declaration each: the four sections and :class:`ExperimentConfig`.

Library code takes these frozen objects and never reads absl FLAGS; only the
entry points turn flags into an :class:`ExperimentConfig` (``config.flags``).
Each dataclass checks its declared fields and, in ``__post_init__``, the rules
across fields, so a bad value fails before any data is loaded. Reading
``config.json`` back and the resume identity are ``config.saved``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any

from mnist_research.config.fields import check, check_declared, check_same_length, setting
from mnist_research.config.registry import DATASETS, MODEL_FAMILIES, OPTIMIZERS

# How a run is carried out, not what it trains: no hyperparameter; a resume may change it.
mechanics = functools.partial(setting, hparam=None, identity=False)
# The optimisation recipe: the HParams "optimizer" group; a resumed run must keep it.
recipe = functools.partial(setting, hparam="optimizer", identity=True)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split (the split does not depend on the seed)."""

    dataset: str = setting("mnist", "Which dataset.", choices=DATASETS, hparam="run", identity=True)
    data_dir: str | None = mechanics(
        None,
        "Folder with <dataset>.npz or the four IDX files (.gz or raw), or an .npz path. "
        "Default: download with tf.keras.datasets.",
        path=True,
    )
    validation_split: float = setting(
        0.2,
        "Fraction of training data held out for validation (the last fraction, as Keras does).",
        above=0.0,
        below=1.0,
        hparam="run",
        identity=True,
    )
    limit_train: int = setting(
        0,
        "Use only the first N training examples (0: all).",
        minimum=0,
        hparam="run",
        identity=True,
    )
    limit_test: int = mechanics(0, "Use only the first N test examples (0: all).", minimum=0)

    def __post_init__(self):
        check_declared(self)
        entry = DATASETS[self.dataset]
        check(
            entry.keras_name is not None or bool(self.data_dir),
            f"--dataset={self.dataset} has no downloader: pass --data_dir=DIR where DIR holds "
            f"{' or '.join(entry.npz_names)} or the four IDX files",
        )


# 28 -> 14 -> 7 -> 4 -> 2: more halvings than this leave nothing to convolve.
MAX_CONV_BLOCKS = 4


def layer_setting(group: str, hparam: str) -> Callable[..., Any]:
    """:func:`setting` for a layer ``group``: kept on resume, and applies only with the
    families whose registry entry reads ``group``."""
    readers = tuple(name for name, family in MODEL_FAMILIES.items() if group in family.reads)
    return functools.partial(setting, only_with={"family": readers}, hparam=hparam, identity=True)


dense_setting = layer_setting("dense", "model")
conv_setting = layer_setting("conv", "topology")
batch_norm_setting = layer_setting("batch_norm", "model")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The classifier: a model family and the sizes of the layer groups its entry reads."""

    family: str = setting(
        "mlp", "Model family.", flag="model", choices=MODEL_FAMILIES, hparam="model", identity=True
    )
    hidden_units: tuple[int, ...] = dense_setting(
        (256, 128, 64),
        "Widths of the dense hidden blocks (for --model=cnn: those after the conv blocks).",
        minimum=1,
    )
    dropout_rates: tuple[float, ...] = dense_setting(
        (0.3, 0.3, 0.2), "Dropout after each dense block.", minimum=0.0, below=1.0
    )
    batch_norm: bool = batch_norm_setting(True, "BatchNormalization in every block.")
    num_classes: int = setting(
        10,
        "Size of the softmax output (the dataset's classes).",
        flag=False,
        minimum=2,
        hparam=None,
        identity=True,
    )
    conv_filters: tuple[int, ...] = conv_setting(
        (32, 64), "Filters of each conv block (each halves the resolution).", minimum=1
    )
    conv_dropout_rates: tuple[float, ...] = conv_setting(
        (0.1, 0.1), "Dropout after each conv block.", minimum=0.0, below=1.0
    )
    conv_kernel_size: int = conv_setting(3, "Kernel side of every convolution (odd).", minimum=1)
    conv_pooling: str = conv_setting(
        "stride",
        "How a conv block halves the resolution: stride (stride-2 conv; fast on "
        "CPUs) or max (stride-1 conv, then 2x2 max-pool).",
        choices=("stride", "max"),
    )

    def __post_init__(self):
        check_declared(self)
        if "dense" in MODEL_FAMILIES[self.family].reads:
            check(len(self.hidden_units) > 0, "hidden_units must name at least one layer")
            check_same_length(self, "hidden_units", "dropout_rates")
        if "conv" in MODEL_FAMILIES[self.family].reads:
            check(
                0 < len(self.conv_filters) <= MAX_CONV_BLOCKS,
                f"conv_filters must name 1 to {MAX_CONV_BLOCKS} conv blocks for model cnn, "
                f"got {list(self.conv_filters)}",
            )
            check_same_length(self, "conv_filters", "conv_dropout_rates")
            check(
                self.conv_kernel_size % 2 == 1,
                f"conv_kernel_size must be a positive odd number, got {self.conv_kernel_size}",
            )


# Seeds feed NumPy's legacy seeding, which takes 0 <= seed < 2**32.
MAX_SEED = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe and loop mechanics."""

    epochs: int = setting(15, "Training epochs.", minimum=1, hparam="run", identity=False)
    batch_size: int = recipe(128, "Global batch size (across replicas).", minimum=1)
    # Float rounding aside (inference mode: no dropout, BN's moving statistics), only speed:
    # a 12,000-image validation pass took 0.096 s at 128 and 0.064 s at 2,000 (2-core CPU).
    eval_batch_size: int = mechanics(
        2000,
        "Global batch size of the validation and test passes (speed only; results do "
        "not depend on it).",
        minimum=1,
    )
    learning_rate: float = recipe(1e-3, "(Initial) learning rate.", above=0.0)
    optimizer: str = recipe(
        "adam",
        "; ".join(f"{entry.name}: {entry.help}" for entry in OPTIMIZERS.values()) + ".",
        choices=OPTIMIZERS,
    )
    weight_decay: float = recipe(
        0.0,
        "Decoupled weight decay: each step multiplies every trainable weight by (1 - lr * decay).",
        minimum=0.0,
        only_with={"optimizer": ("adamw", "sgd")},
    )
    momentum: float = recipe(
        0.0,
        "SGD momentum (0: plain SGD).",
        minimum=0.0,
        below=1.0,
        only_with={"optimizer": ("sgd",)},
    )
    clip_global_norm: float = recipe(
        0.0,
        "Clip the gradient (summed over replicas) to this global norm before the "
        "optimizer sees it (0: off).",
        minimum=0.0,
    )
    label_smoothing: float = recipe(
        0.0,
        "Label smoothing of the training loss: targets (1 - s) * one_hot + s / classes.",
        minimum=0.0,
        below=1.0,
    )
    lr_schedule: str = recipe(
        "constant",
        "constant; cosine (to 0 over training); step (x0.1 at 50% and 75% of the steps).",
        choices=("constant", "cosine", "step"),
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
    steps_per_loop: int = mechanics(
        50,
        "Training steps per tf.function call (1 = one call per batch); the progress bar "
        "and step summaries update once per call.",
        minimum=1,
    )
    summary_every_steps: int = mechanics(
        100, "Write step-level training scalars about every N steps.", minimum=1
    )
    max_to_keep: int = mechanics(3, "Checkpoints kept in checkpoints/.", flag=False, minimum=1)
    fused_adam: bool = mechanics(
        True,
        "Apply Adam with TF's fused kernel (same update rule as Keras Adam; faster).",
        only_with={"optimizer": ("adam",)},
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
    histograms: bool = mechanics(
        True, "Write weight, BN-statistic and gradient histograms to TensorBoard."
    )
    histogram_every_epochs: int = mechanics(
        5, "Write the histograms after every N-th epoch and after the last one.", minimum=1
    )
    # Rounded out to whole steps_per_loop calls: the profiler starts and stops between calls.
    profile_steps: tuple[int, ...] = mechanics(
        (),
        "START,STOP: record a TF profile for these optimizer steps (view it in "
        "TensorBoard's Profile tab; needs `pip install tensorboard-plugin-profile`).",
        minimum=1,
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
        check_declared(self)
        steps = list(self.profile_steps)  # each >= 1: checked as declared
        check(
            len(steps) in (0, 2) and steps == sorted(steps),
            f"profile_steps must be START,STOP with 0 < START <= STOP, got {steps}",
        )


# A TensorFlow device name: [/job:J[/replica:R][/task:T]]/[device:]CPU|GPU|TPU:N.
_DEVICE = re.compile(
    r"^(/job:[\w-]+(/replica:\d+)?(/task:\d+)?)?/?(device:)?(cpu|gpu|tpu):\d+$", re.IGNORECASE
)


@dataclasses.dataclass(frozen=True)
class DistributeConfig:
    """How training is placed on devices (``training.devices.create_strategy``)."""

    strategy: str = mechanics(
        "auto",
        "auto: mirrored if GPUs are visible, else default; one_device; mirrored; "
        "multi_worker (TF_CONFIG).",
        choices=("auto", "default", "one_device", "mirrored", "multi_worker"),
    )
    device: str | None = mechanics(
        None,
        "Device for --strategy=one_device (/cpu:0, /gpu:0).",
        valid=(
            lambda name: name is None or bool(_DEVICE.match(name)),
            "must name a device such as /cpu:0 or /gpu:1",
        ),
    )
    num_cpu_devices: int = mechanics(
        1,
        "Split the CPU into N logical devices (lets --strategy=mirrored run on a CPU).",
        minimum=1,
        maximum=64,
    )
    # A checkpoint holds the optimizer state of one policy (mixed_float16's loss-scale
    # variables exist only under it): a run is continued under the policy it started with.
    mixed_precision: str = setting(
        "none",
        "Keras mixed-precision policy (GPUs).",
        choices=("none", "mixed_float16", "mixed_bfloat16"),
        hparam="system/precision",
        identity=True,
    )

    def __post_init__(self):
        check_declared(self)


# The sections of an ExperimentConfig by name, in the order config.json and flags.txt list them.
SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "distribute": DistributeConfig,
}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything one training run needs."""

    experiment: str = setting(
        "baseline",
        "Experiment name (used in run dir names).",
        hparam="experiment/name",
        identity=False,
        valid=(lambda name: bool(name) and "/" not in name, "must be a non-empty name without '/'"),
    )
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    distribute: DistributeConfig = dataclasses.field(default_factory=DistributeConfig)

    def __post_init__(self):
        check_declared(self)

    def to_dict(self) -> dict[str, Any]:
        """``config.json``'s content (``config.saved.config_from_dict`` reads it back)."""
        return dataclasses.asdict(self)

    def sections(self) -> dict[str, Any]:
        """The four sections by name: ``data``, ``model``, ``train``, ``distribute``."""
        return {name: getattr(self, name) for name in SECTIONS}
