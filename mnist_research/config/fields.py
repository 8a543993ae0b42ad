"""One declaration per setting: a dataclass field that carries everything about it.

A config field is declared with :func:`setting`, which stores in the field's
metadata its help text, its bounds or choices, the absl flag it comes from, its
TensorBoard HParams group and whether it is part of the resume identity. The
absl flags (``config.flags``), ``flags.txt``, ``config.json``, the HParams
experiment definition (``training.hparams``), the resume-identity check
(:meth:`ExperimentConfig.identity`) and the checks below are all read from
these declarations, so a new setting is one field (plus its use).

Checks that involve several fields (as many dropout rates as hidden layers)
stay in each dataclass's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mnist_research.config.checks import check, check_types
from mnist_research.flagfiles import one_argument

# Metadata keys, in one place.
_KEY = "mnist_research"


@dataclasses.dataclass(frozen=True)
class Declaration:
    """What a :func:`setting` knows about its field.

    Attributes:
      help: the flag's help text (and the HParams description).
      hparam: ``"group"`` or ``"group/name"`` in the HParams dashboard, or
        ``None`` for a setting that is deliberately not a hyperparameter
        (paths, loop mechanics).
      identity: part of what must match for a run dir to be resumed.
      flag: the absl flag's name (the field's name unless given), or ``None``
        for a field that has no flag.
      minimum, maximum: inclusive bounds (each element of a list setting).
      above, below: exclusive bounds.
      choices: the allowed values of a text setting (a registry's names).
      valid: ``(test, requirement)``: ``test(value)`` must hold; the error
        says ``<flag> <requirement>``.
      path: a file-system path (``flags.txt`` records it absolute).
      group: for :class:`ModelConfig`, the part of a model that reads the
        setting (``dense``, ``batch_norm``, ``conv``); a model family reads
        only the groups its registry entry names. ``None``: every family.
    """

    help: str
    hparam: str | None
    identity: bool
    flag: str | None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: Mapping[str, Any] | tuple[str, ...] | None = None
    group: str | None = None
    valid: tuple[Callable[[Any], bool], str] | None = None
    path: bool = False

    def bounds_text(self) -> str:
        """``in [0, 1)``, ``>= 1``, ``> 0``… or ``""`` when unbounded."""
        low = (
            ("[", self.minimum)
            if self.minimum is not None
            else (("(", self.above) if self.above is not None else None)
        )
        high = (
            ("]", self.maximum)
            if self.maximum is not None
            else ((")", self.below) if self.below is not None else None)
        )
        if low and high:
            return f"in {low[0]}{_num(low[1])}, {_num(high[1])}{high[0]}"
        if low:
            return f"{'>=' if low[0] == '[' else '>'} {_num(low[1])}"
        if high:
            return f"{'<=' if high[0] == ']' else '<'} {_num(high[1])}"
        return ""

    def within(self, value: float) -> bool:
        """Whether ``value`` satisfies the bounds."""
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.above is None or value > self.above)
            and (self.below is None or value < self.below)
        )


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting(
    default: Any,
    help: str,
    *,
    hparam: str | None,
    identity: bool,
    flag: str | None | bool = True,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: Any = None,
    group: str | None = None,
    valid: Any = None,
    path: bool = False,
) -> Any:
    """A dataclass field declared with everything the project derives from it.

    ``hparam`` and ``identity`` have no default: whether a setting is a
    hyperparameter and whether a resumed run must share it are decided for
    every setting, never by omission. ``flag=True`` names the flag after the
    field, a string names it otherwise, ``False`` gives the field no flag.
    """
    declaration = Declaration(
        help=help,
        hparam=hparam,
        identity=identity,
        flag=None,
        minimum=minimum,
        maximum=maximum,
        above=above,
        below=below,
        choices=choices,
        group=group,
        valid=valid,
        path=path,
    )
    return dataclasses.field(default=default, metadata={_KEY: (declaration, flag)})


def declaration(field: dataclasses.Field) -> Declaration:
    """The :class:`Declaration` of a field made by :func:`setting`, its flag name resolved."""
    declared, flag = field.metadata[_KEY]
    name = field.name if flag is True else (flag or None)
    return dataclasses.replace(declared, flag=name)


def is_declared(field: dataclasses.Field) -> bool:
    return _KEY in field.metadata


def declared_fields(cls_or_obj: Any) -> Iterator[tuple[dataclasses.Field, Declaration]]:
    """``(field, declaration)`` for every declared field, in declaration order."""
    for field in dataclasses.fields(cls_or_obj):
        if is_declared(field):
            yield field, declaration(field)


def check_declared(obj: Any, skip: tuple[str, ...] = ()) -> None:
    """Checks types, choices and bounds of every declared field of ``obj``.

    Raises:
      ValueError: naming the setting (by its flag name) and the value.
    """
    check_types(obj)
    for field, declared in declared_fields(obj):
        if field.name in skip:
            continue
        value, name = getattr(obj, field.name), declared.flag or field.name
        if declared.choices is not None and value is not None:
            choices = list(declared.choices)
            check(value in choices, f"{name} must be one of {', '.join(choices)}, got {value!r}")
        if isinstance(value, str):
            check(
                one_argument(f"--{name}={value}"),
                f"{name} must be one line of UTF-8 text not ending in white space "
                f"(flags.txt holds one flag a line), got {value!r}",
            )
        if declared.valid is not None:
            test, requirement = declared.valid
            check(test(value), f"{name} {requirement}, got {value!r}")
        bounds = declared.bounds_text()
        if not bounds:
            continue
        if isinstance(value, tuple):
            check(
                all(declared.within(v) for v in value),
                f"{name} must all be {bounds}, got {list(value)}",
            )
        elif value is not None:  # check_types has refused NaN and infinities
            check(declared.within(value), f"{name} must be {bounds}, got {value}")
