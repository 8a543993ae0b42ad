"""A search space: which settings a study samples, checked against their declarations.

A space file holds one line per setting (``#`` starts a comment)::

    learning_rate = log(1e-4, 1e-2)           # log-uniform between the bounds
    batch_size = linear(64, 256)              # uniform; an int setting samples ints
    optimizer = choice(adam | sgd)            # one of these values
    dropout_rates = choice(0.2,0.2,0.1 | 0.3,0.3,0.2)
    momentum = linear(0, 0.95)                # sampled only where it applies (sgd)

A setting is named by its flag (``model``, not the field ``family``). Before a
study starts, :func:`parse` checks every line against the setting's
declaration (``config.fields``): it must be a hyperparameter, the kind must fit
its type (``log``/``linear`` for a number, ``choice`` for anything), each value
must lie within its bounds or choices, and a setting that applies only with
some choices of another (``only_with``) must be able to apply. A violation is
one ``ConfigError`` line naming the file and line.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from mnist_research.config import ExperimentConfig
from mnist_research.config import flags as experiment_flags
from mnist_research.config.fields import Declaration, applies
from mnist_research.errors import ConfigError

KINDS = ("log", "linear", "choice")
_LINE = re.compile(r"([A-Za-z_]\w*)\s*=\s*([a-z]+)\s*\((.*)\)")
_FORMS = "`setting = log(low, high)`, `linear(low, high)` or `choice(a | b | ...)`"


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One sampled setting.

    Attributes:
      flag: the setting's flag name.
      kind: ``log``, ``linear`` or ``choice``.
      low, high: the range of ``log`` and ``linear`` (ints for an int setting).
      choices: the values of ``choice``, as flag values (``0.2,0.2,0.1``).
      section: the config section holding the setting (``None``: the experiment's name).
      field: the config field's name.
      declared: the setting's declaration.
      integer: the setting is an int (``log``/``linear`` sample ints).
    """

    flag: str
    kind: str
    low: float | None
    high: float | None
    choices: tuple[str, ...]
    section: str | None
    field: str
    declared: Declaration
    integer: bool

    def text(self) -> str:
        """The canonical form, as the study stores it: ``log(0.0001, 0.01)``."""
        if self.kind == "choice":
            return f"choice({' | '.join(self.choices)})"
        return f"{self.kind}({self.low!r}, {self.high!r})"

    def suggest(self, trial) -> Any:
        """The value an Optuna trial samples for this setting (recorded under its flag name)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.flag, list(self.choices))
        sample = trial.suggest_int if self.integer else trial.suggest_float
        return sample(self.flag, self.low, self.high, log=self.kind == "log")

    def flag_argument(self, value: Any) -> str:
        """``--flag=value`` (a bool choice: ``--flag`` or ``--noflag``)."""
        if value in ("true", "false"):
            return f"--{'' if value == 'true' else 'no'}{self.flag}"
        return f"--{self.flag}={value!r}" if isinstance(value, float) else f"--{self.flag}={value}"


@dataclasses.dataclass(frozen=True)
class Space:
    """The parameters of a space file, in its order, and where they came from."""

    parameters: tuple[Parameter, ...]
    source: str

    def lines(self) -> dict[str, str]:
        """Flag name -> canonical form: what a study stores and compares."""
        return {p.flag: p.text() for p in self.parameters}

    def sample(self, trial, base: ExperimentConfig) -> dict[str, Any]:
        """Samples every parameter that applies with ``base`` and the values sampled so far.

        A setting that applies only with some choices of another (momentum
        with sgd) is sampled after the others, and only when it applies.

        Returns:
          Flag name -> value, in the space's order.
        """
        values = _section_values(base)
        chosen: dict[str, Any] = {}
        ordered = sorted(self.parameters, key=lambda p: p.declared.only_with is not None)
        for parameter in ordered:
            if applies(parameter.declared, values[parameter.section]):
                chosen[parameter.flag] = parameter.suggest(trial)
                values[parameter.section][parameter.field] = chosen[parameter.flag]
        return {p.flag: chosen[p.flag] for p in self.parameters if p.flag in chosen}

    def flag_arguments(self, chosen: Mapping[str, Any]) -> list[str]:
        """The ``--flag=value`` arguments that set ``chosen`` values, in the space's order."""
        return [p.flag_argument(chosen[p.flag]) for p in self.parameters if p.flag in chosen]


def _section_values(config: ExperimentConfig) -> dict[str | None, dict[str, Any]]:
    values = {name: dataclasses.asdict(section) for name, section in config.sections().items()}
    return {None: {"experiment": config.experiment}, **values}


def read(path: str, base: ExperimentConfig) -> Space:
    """Reads and checks the space file ``path`` (see :func:`parse`).

    Raises:
      ConfigError: it cannot be read, or a line is refused.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--space={path}: cannot read it ({e})") from None
    return parse(text, path, base)


def parse(text: str, source: str, base: ExperimentConfig) -> Space:
    """The space a file's ``text`` declares, checked against the settings' declarations.

    Args:
      text: the file's content.
      source: its name, for error messages.
      base: the base recipe (a setting that applies only with another's
        choices must apply with the base's or the space's choices).

    Raises:
      ConfigError: ``<source>:<line>: <what is wrong>``.
    """
    settings = {declared.flag: (section, field, declared) for section, field, declared in _all()}
    parameters: list[Parameter] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        try:
            parameter = _parameter(line, settings)
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
        if any(p.flag == parameter.flag for p in parameters):
            raise ConfigError(f"{where}: {parameter.flag} is already in the space")
        parameters.append(parameter)
    if not parameters:
        raise ConfigError(f"{source}: names no setting; expected lines such as {_FORMS}")
    _check_applicable(parameters, base, source)
    return Space(tuple(parameters), source)


def _all():
    return experiment_flags.experiment_settings()


def _parameter(line: str, settings: dict) -> Parameter:
    """One line as a :class:`Parameter`; ``ValueError`` says what is wrong with it."""
    match = _LINE.fullmatch(line)
    if not match or match.group(2) not in KINDS:
        raise ValueError(f"expected {_FORMS}, got {line!r}")
    flag, kind, arguments = match.groups()
    if flag not in settings:
        raise ValueError(f"{flag} is not a setting (settings are named by their flag)")
    section, field, declared = settings[flag]
    if declared.hparam is None:
        raise ValueError(f"{flag} is not a hyperparameter (its value cannot change results)")
    if kind == "choice":
        choices = tuple(_choice(flag, field.type, declared, c) for c in arguments.split("|"))
        if len(set(choices)) != len(choices):
            raise ValueError(f"{flag}: choice names a value twice")
        return Parameter(flag, kind, None, None, choices, section, field.name, declared, False)
    if field.type not in ("int", "float"):
        raise ValueError(f"{flag} is a {field.type} setting: use choice(a | b | ...)")
    low, high = _range(flag, kind, field.type == "int", declared, arguments)
    return Parameter(flag, kind, low, high, (), section, field.name, declared, field.type == "int")


def _range(flag: str, kind: str, integer: bool, declared: Declaration, arguments: str):
    parts = [p.strip() for p in arguments.split(",")]
    if len(parts) != 2:
        raise ValueError(f"{flag}: {kind}() takes two numbers, low and high")
    low, high = (_number(flag, p, integer) for p in parts)
    if not low < high:
        raise ValueError(f"{flag}: low must be below high, got {kind}({low!r}, {high!r})")
    if kind == "log" and low <= 0:
        raise ValueError(f"{flag}: log() needs a positive low, got {low!r}")
    for value in (low, high):
        if not declared.within(value):
            raise ValueError(
                f"{flag} must be {declared.bounds_text()}, and the range holds {value}"
            )
    return low, high


def _number(flag: str, text: str, integer: bool) -> float | int:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{flag}: expected {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{flag}: expected a finite number, got {text!r}")
    return value


def _choice(flag: str, kind: str, declared: Declaration, text: str) -> str:
    """One choice as its canonical flag value, checked against the declaration."""
    value = text.strip()
    if declared.choices is not None:
        if value not in declared.choices:
            raise ValueError(
                f"{flag}: {value!r} is not one of {', '.join(declared.choices)} "
                f"(separate choices with |)"
            )
        return value
    if kind == "bool":
        if value not in ("true", "false"):
            raise ValueError(f"{flag} is a bool setting: choose from true | false, got {value!r}")
        return value
    if kind.startswith("tuple["):
        elements = [_number(flag, v.strip(), "int" in kind) for v in value.split(",")]
        if not all(declared.within(v) for v in elements):
            raise ValueError(f"{flag} must all be {declared.bounds_text()}, got {value}")
        return ",".join(repr(v) if isinstance(v, float) else str(v) for v in elements)
    if kind in ("int", "float"):
        number = _number(flag, value, kind == "int")
        if not declared.within(number):
            raise ValueError(f"{flag} must be {declared.bounds_text()}, got {value}")
        return repr(number) if isinstance(number, float) else str(number)
    return value


def _check_applicable(parameters: list[Parameter], base: ExperimentConfig, source: str) -> None:
    """Refuses a setting that can never apply: its chooser holds other values in base and space."""
    values = _section_values(base)
    flag = {(section, field.name): declared.flag for section, field, declared in _all()}
    searched = {(p.section, p.field): set(p.choices) for p in parameters if p.kind == "choice"}
    for parameter in parameters:
        for chooser, allowed in (parameter.declared.only_with or {}).items():
            possible = searched.get((parameter.section, chooser)) or {
                values[parameter.section][chooser]
            }
            if not possible & set(allowed):
                name = flag[(parameter.section, chooser)]
                raise ConfigError(
                    f"{source}: {parameter.flag} applies only to {name}="
                    f"{'|'.join(allowed)}, and the base recipe and the space give "
                    f"{name}={'|'.join(sorted(possible))}"
                )
