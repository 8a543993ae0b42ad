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
        expected = kind.replace("Tuple[", "a list of ").replace(", ...]", "s")
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
    """The MLP classifier.

    Attributes:
      hidden_units: width of each hidden ``DenseBlock``.
      dropout_rates: dropout after each block; same length as ``hidden_units``.
      batch_norm: put BatchNormalization between Dense and ReLU.
      num_classes: size of the softmax output.
    """

    hidden_units: Tuple[int, ...] = (256, 128, 64)
    dropout_rates: Tuple[float, ...] = (0.3, 0.3, 0.2)
    batch_norm: bool = True
    num_classes: int = 10

    def __post_init__(self):
        _check_types(self)
        object.__setattr__(self, "hidden_units", tuple(int(u) for u in self.hidden_units))
        object.__setattr__(self, "dropout_rates", tuple(float(r) for r in self.dropout_rates))
        _check(len(self.hidden_units) > 0, "hidden_units must name at least one layer")
        _check(all(u > 0 for u in self.hidden_units),
               f"hidden_units must all be > 0, got {list(self.hidden_units)}")
        _check(len(self.hidden_units) == len(self.dropout_rates),
               f"hidden_units ({len(self.hidden_units)} values) and dropout_rates "
               f"({len(self.dropout_rates)} values) must have the same length")
        _check(all(0.0 <= r < 1.0 for r in self.dropout_rates),
               f"dropout_rates must all be in [0, 1), got {list(self.dropout_rates)}")
        _check(self.num_classes >= 2, f"num_classes must be >= 2, got {self.num_classes}")


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
      histograms: write weight, BN-statistic and gradient histograms once per epoch.
      profile_steps: ``(start, stop)`` optimizer steps to record with the TF
        profiler (rounded out to whole ``steps_per_loop`` calls); ``()``: none.
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
    histograms: bool = True
    profile_steps: Tuple[int, ...] = ()

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
        how many steps run per loop, and the device placement may differ.
        """
        train = dataclasses.asdict(self.train)
        for key in ("steps_per_loop", "summary_every_steps", "max_to_keep", "epochs",
                    "fused_adam", "histograms", "profile_steps"):
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
