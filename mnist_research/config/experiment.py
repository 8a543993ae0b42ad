"""Everything one training run needs, and its JSON form: :class:`ExperimentConfig`."""

from __future__ import annotations

import dataclasses
from typing import Any

from mnist_research.config.checks import check
from mnist_research.config.data import DataConfig
from mnist_research.config.distribute import DistributeConfig
from mnist_research.config.fields import check_declared, declared_fields, setting
from mnist_research.config.model import ModelConfig
from mnist_research.config.train import TrainConfig

_SECTIONS = (
    ("data", DataConfig),
    ("model", ModelConfig),
    ("train", TrainConfig),
    ("distribute", DistributeConfig),
)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything one training run needs."""

    experiment: str = setting(
        "baseline",
        "Experiment name (used in run dir names).",
        hparam="experiment/name",
        identity=False,
    )
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    distribute: DistributeConfig = dataclasses.field(default_factory=DistributeConfig)

    def __post_init__(self):
        check(
            isinstance(self.experiment, str)
            and bool(self.experiment)
            and "/" not in self.experiment,
            f"experiment must be a non-empty name without '/', got {self.experiment!r}",
        )
        check_declared(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly nested dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> ExperimentConfig:
        """Inverse of :meth:`to_dict`.

        Fields missing from a section take their defaults (config files written
        before a field existed still load).

        Raises:
          ValueError: ``raw`` is not such a dict, a section or field is missing
            or unknown, or a value is invalid (the message names it).
        """
        check(isinstance(raw, dict), f"expected a JSON object, got {type(raw).__name__}")
        missing = [k for k in ("experiment", *(name for name, _ in _SECTIONS)) if k not in raw]
        check(not missing, f"missing {', '.join(missing)}")
        sections = {}
        for name, section in _SECTIONS:
            values = raw[name]
            check(isinstance(values, dict), f"{name} must be a JSON object")
            unknown = set(values) - {f.name for f in dataclasses.fields(section)}
            check(not unknown, f"unknown field(s) {', '.join(sorted(unknown))} in {name}")
            try:
                sections[name] = section(**values)
            except ValueError as e:
                raise ValueError(f"{name}.{e}") from None
        return cls(experiment=raw["experiment"], **sections)

    def sections(self) -> dict[str, Any]:
        """The four sections by name: ``data``, ``model``, ``train``, ``distribute``."""
        return {name: getattr(self, name) for name, _ in _SECTIONS}

    def identity(self) -> dict[str, Any]:
        """The settings that must match for a run dir to be resumed.

        Every field declared with ``identity=True`` (``config.fields``), by
        section: model shape, the training recipe, the dataset and its split,
        the precision policy. Where the data lives, how many steps run per
        loop, the evaluation batch, when to stop and which epoch to export may
        differ; so may ``epochs`` (a run is extended) unless the learning rate
        follows a schedule, whose length is the number of epochs: extending a
        cosine or step schedule would restart it part-way. The device placement
        is checked against what the run recorded (``rundir.records``).
        """
        identity = {
            name: {
                field.name: getattr(section, field.name)
                for field, declared in declared_fields(section)
                if declared.identity
            }
            for name, section in self.sections().items()
        }
        if self.train.lr_schedule != "constant":
            identity["train"]["epochs"] = self.train.epochs
        return identity


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
