"""The experiment's absl flags and ``flags.txt``, derived from the config declarations.

absl checks inclusive bounds and choices at parse time; the config dataclasses
the rest (open bounds, list elements, cross-field rules), reported as a usage error.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

from absl import app, flags

from mnist_research.config import SECTIONS, ExperimentConfig
from mnist_research.config.fields import Declaration, applies, declared_fields, refusal

# Each section's class, the experiment's own settings (section None) first, as flags.txt lists them.
_CLASSES = {None: ExperimentConfig, **SECTIONS}


def experiment_settings() -> Iterator[tuple[str | None, dataclasses.Field, Declaration]]:
    """``(section or None, field, declaration)`` for every setting that has a flag."""
    for section, cls in _CLASSES.items():
        for field, declared in declared_fields(cls):
            if declared.flag:
                yield section, field, declared


# The title of each section's flags in ``--help``. absl groups flags by the module
# they are defined for, so each section's flags are defined for its title (the
# experiment's name goes with the command's own flags).
HELP_GROUPS = {
    "data": "data flags",
    "model": "model flags",
    "train": "training flags",
    "distribute": "devices and distribution flags",
}


def _help(section: str | None, field: dataclasses.Field, declared: Declaration) -> str:
    """The declared help, with what absl's own help text would not say."""
    text = declared.help
    declarations = {f.name: d for f, d in declared_fields(_CLASSES[section])}
    for chooser, choices in (declared.only_with or {}).items():
        chooser_declared = declarations[chooser]
        if set(choices) != set(chooser_declared.choices):
            text = f"--{chooser_declared.flag}={'|'.join(choices)}: {text}"
    bounds = declared.bounds_text()
    if bounds and field.type.startswith("tuple["):
        text += f" (each {bounds})"
    elif bounds and (declared.above is not None or declared.below is not None):
        text += f" ({bounds})"
    return text


def define_experiment_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """Defines every experiment flag on ``fv``, each section's under its ``HELP_GROUPS`` title."""
    for section, field, declared in experiment_settings():
        name, default, kind = declared.flag, field.default, field.type
        text, group = _help(section, field, declared), HELP_GROUPS.get(section)
        common = dict(help=text, flag_values=fv, module_name=group)
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
            flags.register_validator(name, *declared.valid, flag_values=fv)


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

    A flag that does not apply with the chosen values (``--conv_filters`` with
    ``--model=mlp``, ``--momentum`` with ``--optimizer=adam``: its ``only_with``
    rule) is refused when it differs from its default, so the run cannot
    silently train something other than what was asked for, while layered
    flagfiles that merely restate defaults still work.
    """
    values: dict[str | None, dict] = {section: {} for section in _CLASSES}
    for section, field, declared in experiment_settings():
        values[section][field.name] = _value(fv, field, declared.flag)
    refused = [refusal(cls, values[section]) for section, cls in SECTIONS.items()]
    if any(refused):
        raise app.UsageError("; ".join(filter(None, refused)))
    try:
        return ExperimentConfig(
            **values[None], **{name: cls(**values[name]) for name, cls in SECTIONS.items()}
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from None


def flagfile_text(config: ExperimentConfig) -> str:
    """A flagfile that reproduces ``config`` (what ``--flagfile=flags.txt`` reads back).

    Settings that do not apply (the conv settings of an MLP, the momentum of
    Adam) are left out: they hold their defaults, and a flagfile for another
    choice may not set them.
    """
    sections = {None: config, **config.sections()}
    values = {name: dataclasses.asdict(section) for name, section in sections.items()}
    lines = ["# Resolved flags of this run; rerun with --flagfile=flags.txt"]
    for section, field, declared in experiment_settings():
        value = getattr(sections[section], field.name)
        if value is None or not applies(declared, values[section]):
            continue
        if declared.path and value:
            value = os.path.abspath(value)  # flags.txt works from any folder
        elif isinstance(value, tuple):
            value = ",".join(map(str, value))
        if isinstance(value, bool):  # absl reads a bool back from --name or --noname
            lines.append(f"--{'' if value else 'no'}{declared.flag}")
        else:
            lines.append(f"--{declared.flag}={value}")
    return "\n".join(lines) + "\n"
