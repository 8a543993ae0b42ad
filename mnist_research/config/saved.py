"""A run's saved config read back: ``config.json``, flag arguments (``flags.txt``), the
resume identity, what differs.

A fresh run only writes its config (:meth:`ExperimentConfig.to_dict`) and parses
the command's flags (``config.flags``); this is for a run dir that already holds
one (resuming, checking a checkpoint's settings, comparing runs) and for
arguments parsed away from absl's ``FLAGS`` (studies, sweeps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from absl import flags

from mnist_research import flagfiles
from mnist_research.config import SECTIONS, ExperimentConfig
from mnist_research.config.fields import check, declared_fields
from mnist_research.config.flags import config_from_flags, define_experiment_flags


def config_from_dict(raw: Any) -> ExperimentConfig:
    """Inverse of :meth:`ExperimentConfig.to_dict`.

    Fields missing from a section take their defaults (config files written
    before a field existed still load).

    Raises:
      ValueError: ``raw`` is not such a dict, a section or field is missing
        or unknown, or a value is invalid (the message names it).
    """
    check(isinstance(raw, dict), f"expected a JSON object, got {type(raw).__name__}")
    missing = [k for k in ("experiment", *SECTIONS) if k not in raw]
    check(not missing, f"missing {', '.join(missing)}")
    sections = {}
    for name, section in SECTIONS.items():
        values = raw[name]
        check(isinstance(values, dict), f"{name} must be a JSON object")
        unknown = set(values) - {f.name for f in dataclasses.fields(section)}
        check(not unknown, f"unknown field(s) {', '.join(sorted(unknown))} in {name}")
        try:
            sections[name] = section(**values)
        except ValueError as e:
            raise ValueError(f"{name}.{e}") from None
    return ExperimentConfig(experiment=raw["experiment"], **sections)


def config_from_arguments(arguments: Sequence[str], known_only: bool = False) -> ExperimentConfig:
    """The validated config that flag ``arguments`` give, parsed on flag values of their own
    (not absl's ``FLAGS``), ``--flagfile`` expanded; ``known_only`` skips other flags.

    Raises:
      absl.flags.Error, app.UsageError: an argument or a value is refused.
    """
    fv = flags.FlagValues()
    define_experiment_flags(fv)
    fv(flagfiles.expand(["config", *arguments]), known_only=known_only)
    return config_from_flags(fv)


def resume_identity(config: ExperimentConfig) -> dict[str, Any]:
    """The settings that must match for a run dir to be resumed.

    Every field declared with ``identity=True`` (``config.fields``), by
    section: model shape, the training recipe, the dataset and its split,
    the precision policy. Where the data lives, how many steps run per
    loop, the evaluation batch, when to stop and which epoch to export may
    differ; so may ``epochs`` (a run is extended) unless the learning rate
    follows a schedule, whose length is the number of epochs: extending a
    cosine or step schedule would restart it part-way. The device placement
    is checked against what the run recorded (``training.existing_run.check_same_run``).
    """
    identity = {
        name: {
            field.name: getattr(section, field.name)
            for field, declared in declared_fields(section)
            if declared.identity
        }
        for name, section in config.sections().items()
    }
    if config.train.lr_schedule != "constant":
        identity["train"]["epochs"] = config.train.epochs
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
