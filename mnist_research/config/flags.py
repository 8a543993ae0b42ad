"""The experiment's absl flags, derived from the config declarations.

Commands that train (``train``, ``benchmark``, the notebook) call
:func:`define_experiment_flags` when they run; nothing is defined at import
time. Every declared config field with a flag (``config.fields.setting``)
becomes one flag of the matching type, default, help, bounds and choices;
:func:`config_from_flags` is the one translation back, and
:func:`flagfile_text` writes ``flags.txt`` from the resulting config. A flagfile
under ``experiments/`` sets these flags.

Bounds and choices are checked by absl at parse time where absl can (inclusive
bounds, enums); the rest (open bounds, list elements, cross-field rules) by the
config dataclasses, reported as a usage error.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

from absl import app, flags

from mnist_research import flagfiles
from mnist_research.config.experiment import ExperimentConfig
from mnist_research.config.fields import Declaration, declared_fields, is_declared
from mnist_research.config.registry import MODEL_FAMILIES

# Sections in the order flags.txt lists them (the experiment's own name first).
_SECTIONS = ("data", "model", "train", "distribute")


def _section_classes() -> dict[str, type]:
    return {
        field.name: field.default_factory
        for field in dataclasses.fields(ExperimentConfig)
        if not is_declared(field)
    }


def experiment_settings() -> Iterator[tuple[str | None, dataclasses.Field, Declaration]]:
    """``(section or None, field, declaration)`` for every setting that has a flag."""
    for field, declared in declared_fields(ExperimentConfig):
        if declared.flag:
            yield None, field, declared
    classes = _section_classes()
    for section in _SECTIONS:
        for field, declared in declared_fields(classes[section]):
            if declared.flag:
                yield section, field, declared


# What ``--help`` calls each section's group of flags (the experiment's name goes
# with the command's own flags).
_HELP_GROUPS = {
    "data": "data",
    "model": "model",
    "train": "training",
    "distribute": "devices and distribution",
}


def flag_groups() -> list[tuple[str, list[str]]]:
    """The experiment flags by config section, ``(title, flag names)``, grouped as in ``--help``."""
    groups: dict[str, list[str]] = {}
    for section, _, declared in experiment_settings():
        if section is not None:
            groups.setdefault(_HELP_GROUPS[section], []).append(declared.flag)
    return list(groups.items())


def experiment_flag_names() -> list[str]:
    """The experiment flags, in the order flags.txt lists them."""
    return [declared.flag for _, _, declared in experiment_settings()]


def _families_reading(group: str | None) -> list[str]:
    return [
        name for name, family in MODEL_FAMILIES.items() if group is None or group in family.reads
    ]


def _help(field: dataclasses.Field, declared: Declaration) -> str:
    """The declared help, with what absl's own help text would not say."""
    text = declared.help
    readers = _families_reading(declared.group)
    if len(readers) < len(MODEL_FAMILIES):
        text = f"--model={'|'.join(readers)}: {text}"
    bounds = declared.bounds_text()
    if bounds and field.type.startswith("tuple["):
        text += f" (each {bounds})"
    elif bounds and (declared.above is not None or declared.below is not None):
        text += f" ({bounds})"
    return text


def _define(fv: flags.FlagValues, field: dataclasses.Field, declared: Declaration) -> None:
    name, default, kind = declared.flag, field.default, field.type
    common = dict(help=_help(field, declared), flag_values=fv)
    bounds = dict(lower_bound=declared.minimum, upper_bound=declared.maximum)
    if declared.choices is not None:
        flags.DEFINE_enum(name, default, list(declared.choices), **common)
    elif kind == "bool":
        flags.DEFINE_boolean(name, default, **common)
    elif kind == "int":
        flags.DEFINE_integer(name, default, **bounds, **common)
    elif kind == "float":
        flags.DEFINE_float(name, default, **bounds, **common)
    elif kind.startswith("tuple["):
        flags.DEFINE_list(name, [str(v) for v in default], **common)
    else:
        flags.DEFINE_string(name, default, **common)
    if declared.valid is not None:
        test, requirement = declared.valid
        flags.register_validator(name, test, requirement, flag_values=fv)


def define_experiment_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """Defines every experiment flag on ``fv``."""
    for _, field, declared in experiment_settings():
        _define(fv, field, declared)


def _value(fv: flags.FlagValues, field: dataclasses.Field, name: str):
    value = fv[name].value
    if not field.type.startswith("tuple["):
        return value
    cast = int if "int" in field.type else float
    try:
        return tuple(cast(v) for v in value)
    except ValueError:
        raise app.UsageError(
            f"--{name}: expected a comma-separated list of numbers, got {','.join(value)}"
        ) from None


def config_from_flags(fv: flags.FlagValues = flags.FLAGS) -> ExperimentConfig:
    """Builds the validated config; raises ``app.UsageError`` on bad values.

    A flag of a part of the model that the chosen family does not build (the
    conv flags with ``--model=mlp``) is refused when it differs from its
    default, so the run cannot silently train something other than what was
    asked for, while layered flagfiles that merely restate defaults still work.
    """
    values: dict[str | None, dict] = {None: {}, **{section: {} for section in _SECTIONS}}
    for section, field, declared in experiment_settings():
        values[section][field.name] = _value(fv, field, declared.flag)
    reads = MODEL_FAMILIES[fv[_family_flag()].value].reads
    unread = [
        declared.flag
        for _, field, declared in experiment_settings()
        if declared.group is not None
        and declared.group not in reads
        and _value(fv, field, declared.flag) != field.default
    ]
    if unread:
        by_readers: dict[str, list[str]] = {}
        for name in unread:
            readers = " or ".join(f"--model={f}" for f in _families_reading(_group_of(name)))
            by_readers.setdefault(readers, []).append(f"--{name}")
        parts = [
            f"{', '.join(names)} apply only to {readers}" for readers, names in by_readers.items()
        ]
        raise app.UsageError(f"{'; '.join(parts)}, not --model={fv[_family_flag()].value}")
    try:
        classes = _section_classes()
        return ExperimentConfig(
            **values[None],
            **{section: classes[section](**values[section]) for section in _SECTIONS},
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from None


def _family_flag() -> str:
    return next(
        declared.flag
        for section, field, declared in experiment_settings()
        if section == "model" and field.name == "family"
    )


def _group_of(flag: str) -> str | None:
    return next(declared.group for _, _, declared in experiment_settings() if declared.flag == flag)


def _serialize(name: str, value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return f"--{'' if value else 'no'}{name}"
    if isinstance(value, tuple):
        return f"--{name}={','.join(_number(v) for v in value)}"
    return f"--{name}={_number(value)}"


def _number(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def flagfile_text(config: ExperimentConfig) -> str:
    """A flagfile that reproduces ``config`` (what ``--flagfile=flags.txt`` reads back).

    Settings of parts of the model the family does not build are left out
    (they hold their defaults, and another family's flagfile may not set them).
    """
    reads = MODEL_FAMILIES[config.model.family].reads
    sections = {None: config, **config.sections()}
    lines = ["# Resolved flags of this run; rerun with --flagfile=flags.txt"]
    for section, field, declared in experiment_settings():
        if declared.group is not None and declared.group not in reads:
            continue
        value = getattr(sections[section], field.name)
        if declared.path and value:
            value = os.path.abspath(value)  # flags.txt works from any folder
        line = _serialize(declared.flag, value)
        if line is None:
            continue
        if not flagfiles.one_argument(line):
            raise app.UsageError(f"{line!r} cannot be written as one line of flags.txt")
        lines.append(line)
    return "\n".join(lines) + "\n"
