"""Frozen, validated configuration objects.

Library code takes these objects and never reads absl FLAGS; only the entry
points (``train.py`` and friends) turn flags into a :class:`ExperimentConfig`.
Every dataclass validates itself in ``__post_init__`` and raises ``ValueError``
with a message that names the offending field, so a bad value fails before any
data is loaded or any TensorFlow op runs.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from typing import Any, Optional, Tuple

DATASETS = ("mnist", "fashion_mnist")
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
MIXED_PRECISION = ("none", "mixed_float16", "mixed_bfloat16")
LR_SCHEDULES = ("constant", "cosine", "step")
# The model families ``model.registry`` builds; ``mlp`` is the seed recipe.
MODEL_FAMILIES = ("mlp", "cnn")
# How a conv block halves the resolution: a stride-2 convolution, or a 2x2 max-pool.
CONV_POOLING = ("stride", "max")
# 28 -> 14 -> 7 -> 4 -> 2: more halvings than this leave nothing to convolve.
MAX_CONV_BLOCKS = 4


# Seeds feed NumPy's legacy seeding, which takes 0 <= seed < 2**32.
MAX_SEED = 2**32 - 1
# A TensorFlow device name: [/job:J[/replica:R][/task:T]]/[device:]CPU|GPU|TPU:N.
_DEVICE = re.compile(r"^(/job:[\w-]+(/replica:\d+)?(/task:\d+)?)?/?(device:)?(cpu|gpu|tpu):\d+$",
                     re.IGNORECASE)


def is_device_name(name: Optional[str]) -> bool:
    """Whether ``name`` is ``None`` or a device name such as ``/cpu:0`` or ``/gpu:1``."""
    return name is None or bool(_DEVICE.match(name))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _is_int(value: Any) -> bool:
    """An integer (NumPy's too), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A real number (NumPy's too), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_types(obj: Any) -> None:
    """Checks every field against its annotation; floats accept ints (and become floats).

    The dataclasses are also built from ``config.json``, which may have been
    edited by hand: a string where a number belongs must fail here, naming the
    field, not deep inside training.
    """
    for field in dataclasses.fields(obj):
        value, kind = getattr(obj, field.name), str(field.type)
        if kind == "int":
            ok = _is_int(value)
            if ok:
                object.__setattr__(obj, field.name, int(value))
        elif kind == "float":
            ok = _is_number(value) and math.isfinite(value)
            if ok:
                object.__setattr__(obj, field.name, float(value))
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "str":
            ok = isinstance(value, str)
        elif kind == "Optional[str]":
            ok = value is None or isinstance(value, str)
        elif kind.startswith("Tuple["):
            element = _is_int if "int" in kind else _is_number
            ok = (isinstance(value, (list, tuple)) and all(element(v) for v in value)
                  and all(math.isfinite(v) for v in value))
        else:
            ok = True  # nested configs check themselves
        expected = ("a finite number" if kind == "float" else
                    kind.replace("Tuple[", "a list of ").replace(", ...]", "s"))
        _check(ok, f"{field.name} must be {expected}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split.

    Attributes:
      dataset: ``mnist`` or ``fashion_mnist``.
      data_dir: folder (or ``.npz`` file) with local data; ``None`` downloads
        through ``tf.keras.datasets``.
      validation_split: fraction of the training set held out for validation.
        As in Keras ``validation_split``, the *last* fraction is held out, so the
        split does not depend on the seed.
      limit_train: use only the first N training examples (0: all). For quick
        experiments and smoke runs.
      limit_test: use only the first N test examples (0: all).
    """

    dataset: str = "mnist"
    data_dir: Optional[str] = None
    validation_split: float = 0.2
    limit_train: int = 0
    limit_test: int = 0

    def __post_init__(self):
        _check_types(self)
        _check(self.dataset in DATASETS,
               f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        _check(0.0 < self.validation_split < 1.0,
               f"validation_split must be in (0, 1), got {self.validation_split}")
        _check(self.limit_train >= 0, f"limit_train must be >= 0, got {self.limit_train}")
        _check(self.limit_test >= 0, f"limit_test must be >= 0, got {self.limit_test}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The classifier: a model family and its layer sizes.

    Attributes:
      family: ``mlp`` (dense blocks only, the seed recipe) or ``cnn`` (conv
        blocks, then dense blocks).
      hidden_units: width of each hidden ``DenseBlock`` (for ``cnn``: the dense
        blocks after the conv blocks).
      dropout_rates: dropout after each dense block; same length as ``hidden_units``.
      batch_norm: put BatchNormalization between each Dense (or Conv) and its ReLU.
      num_classes: size of the softmax output.
      conv_filters: ``cnn`` only: filters of each conv block; each block halves
        the resolution. Empty for ``mlp``.
      conv_dropout_rates: ``cnn`` only: dropout after each conv block; same
        length as ``conv_filters``. Empty for ``mlp``.
      conv_kernel_size: ``cnn`` only: the square kernel of every conv layer.
      conv_pooling: ``cnn`` only: ``stride`` (the convolution has stride 2) or
        ``max`` (stride-1 convolution, then a 2x2 max-pool).
    """

    family: str = "mlp"
    hidden_units: Tuple[int, ...] = (256, 128, 64)
    dropout_rates: Tuple[float, ...] = (0.3, 0.3, 0.2)
    batch_norm: bool = True
    num_classes: int = 10
    conv_filters: Tuple[int, ...] = ()
    conv_dropout_rates: Tuple[float, ...] = ()
    conv_kernel_size: int = 3
    conv_pooling: str = "stride"

    def __post_init__(self):
        _check_types(self)
        for name, cast in (("hidden_units", int), ("dropout_rates", float),
                           ("conv_filters", int), ("conv_dropout_rates", float)):
            object.__setattr__(self, name, tuple(cast(v) for v in getattr(self, name)))
        _check(self.family in MODEL_FAMILIES,
               f"model must be one of {', '.join(MODEL_FAMILIES)}, got {self.family!r}")
        _check(len(self.hidden_units) > 0, "hidden_units must name at least one layer")
        _check(all(u > 0 for u in self.hidden_units),
               f"hidden_units must all be > 0, got {list(self.hidden_units)}")
        _check(len(self.hidden_units) == len(self.dropout_rates),
               f"hidden_units ({len(self.hidden_units)} values) and dropout_rates "
               f"({len(self.dropout_rates)} values) must have the same length")
        _check(all(0.0 <= r < 1.0 for r in self.dropout_rates),
               f"dropout_rates must all be in [0, 1), got {list(self.dropout_rates)}")
        _check(self.num_classes >= 2, f"num_classes must be >= 2, got {self.num_classes}")
        if self.family == "cnn":
            self._check_conv()
        else:
            _check(not self.conv_filters and not self.conv_dropout_rates,
                   f"conv_filters and conv_dropout_rates apply to model cnn only, not "
                   f"{self.family} (got {list(self.conv_filters)} and "
                   f"{list(self.conv_dropout_rates)})")

    def _check_conv(self) -> None:
        _check(0 < len(self.conv_filters) <= MAX_CONV_BLOCKS,
               f"conv_filters must name 1 to {MAX_CONV_BLOCKS} conv blocks for model cnn, "
               f"got {list(self.conv_filters)}")
        _check(all(f > 0 for f in self.conv_filters),
               f"conv_filters must all be > 0, got {list(self.conv_filters)}")
        _check(len(self.conv_filters) == len(self.conv_dropout_rates),
               f"conv_filters ({len(self.conv_filters)} values) and conv_dropout_rates "
               f"({len(self.conv_dropout_rates)} values) must have the same length")
        _check(all(0.0 <= r < 1.0 for r in self.conv_dropout_rates),
               f"conv_dropout_rates must all be in [0, 1), got {list(self.conv_dropout_rates)}")
        _check(self.conv_kernel_size > 0 and self.conv_kernel_size % 2 == 1,
               f"conv_kernel_size must be a positive odd number, got {self.conv_kernel_size}")
        _check(self.conv_pooling in CONV_POOLING,
               f"conv_pooling must be one of {', '.join(CONV_POOLING)}, "
               f"got {self.conv_pooling!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe and loop mechanics.

    Attributes:
      epochs: number of passes over the training split.
      batch_size: *global* batch size, split across replicas.
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
        _check_types(self)
        object.__setattr__(self, "profile_steps", tuple(int(s) for s in self.profile_steps))
        _check(self.lr_schedule in LR_SCHEDULES,
               f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        _check(not self.profile_steps or (len(self.profile_steps) == 2 and
                                          0 < self.profile_steps[0] <= self.profile_steps[1]),
               f"profile_steps must be START,STOP with 0 < START <= STOP, "
               f"got {list(self.profile_steps)}")
        _check(self.epochs > 0, f"epochs must be > 0, got {self.epochs}")
        _check(self.batch_size > 0, f"batch_size must be > 0, got {self.batch_size}")
        _check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        _check(self.steps_per_loop > 0, f"steps_per_loop must be > 0, got {self.steps_per_loop}")
        _check(self.summary_every_steps > 0,
               f"summary_every_steps must be > 0, got {self.summary_every_steps}")
        _check(self.max_to_keep > 0, f"max_to_keep must be > 0, got {self.max_to_keep}")
        _check(0 <= self.seed <= MAX_SEED, f"seed must be in [0, 2**32 - 1], got {self.seed}")
        _check(self.histogram_every_epochs > 0,
               f"histogram_every_epochs must be > 0, got {self.histogram_every_epochs}")
        _check(self.early_stopping_patience >= 0,
               f"early_stopping_patience must be >= 0, got {self.early_stopping_patience}")


@dataclasses.dataclass(frozen=True)
class DistributeConfig:
    """How training is placed on devices (see ``distribute.create_strategy``).

    Attributes:
      strategy: ``auto``, ``default``, ``one_device``, ``mirrored`` or ``multi_worker``.
      device: the device for ``one_device`` (``/cpu:0``, ``/gpu:0``).
      num_cpu_devices: split the CPU into N logical devices (N > 1 lets
        ``mirrored`` run on a CPU-only machine).
      mixed_precision: ``none``, ``mixed_float16`` or ``mixed_bfloat16``.
    """

    strategy: str = "auto"
    device: Optional[str] = None
    num_cpu_devices: int = 1
    mixed_precision: str = "none"

    def __post_init__(self):
        _check_types(self)
        _check(is_device_name(self.device),
               f"device must name a device such as /cpu:0 or /gpu:1, got {self.device!r}")
        _check(self.strategy in STRATEGIES,
               f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        _check(self.num_cpu_devices >= 1,
               f"num_cpu_devices must be >= 1, got {self.num_cpu_devices}")
        _check(self.mixed_precision in MIXED_PRECISION,
               f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}, "
               f"got {self.mixed_precision!r}")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything one training run needs."""

    experiment: str = "baseline"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    distribute: DistributeConfig = dataclasses.field(default_factory=DistributeConfig)

    def __post_init__(self):
        _check(isinstance(self.experiment, str) and bool(self.experiment)
               and "/" not in self.experiment,
               f"experiment must be a non-empty name without '/', got {self.experiment!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly nested dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> "ExperimentConfig":
        """Inverse of :meth:`to_dict`.

        Fields missing from a section take their defaults (config files written
        before a field existed still load).

        Raises:
          ValueError: ``raw`` is not such a dict, a section or field is missing
            or unknown, or a value is invalid (the message names it).
        """
        _check(isinstance(raw, dict), f"expected a JSON object, got {type(raw).__name__}")
        missing = [k for k in ("experiment", "data", "model", "train", "distribute")
                   if k not in raw]
        _check(not missing, f"missing {', '.join(missing)}")
        sections = {}
        for name, section in (("data", DataConfig), ("model", ModelConfig),
                              ("train", TrainConfig), ("distribute", DistributeConfig)):
            values = raw[name]
            _check(isinstance(values, dict), f"{name} must be a JSON object")
            unknown = set(values) - {f.name for f in dataclasses.fields(section)}
            _check(not unknown, f"unknown field(s) {', '.join(sorted(unknown))} in {name}")
            try:
                sections[name] = section(**values)
            except ValueError as e:
                raise ValueError(f"{name}.{e}") from None
        return cls(experiment=raw["experiment"], **sections)

    def identity(self) -> dict[str, Any]:
        """The settings that must match for a run dir to be resumed.

        Model shape and training recipe must match; where the data lives,
        how many steps run per loop, when to stop, which epoch to export, and
        the device placement may differ.
        """
        train = dataclasses.asdict(self.train)
        for key in ("steps_per_loop", "summary_every_steps", "max_to_keep", "epochs",
                    "fused_adam", "jit_compile", "histograms", "histogram_every_epochs",
                    "profile_steps", "early_stopping_patience", "restore_best"):
            train.pop(key)
        return {"dataset": self.data.dataset,
                "validation_split": self.data.validation_split,
                "limit_train": self.data.limit_train,
                "model": dataclasses.asdict(self.model),
                "train": train}


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two nested dicts."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out
