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
      only_with: ``{field: choices}``: the setting applies only while each
        named field of its section holds one of those choices
        (``{"optimizer": ("sgd",)}``); elsewhere it must keep its default and
        is stored in its unused form (:func:`unused_form`). ``None``: always.
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
    only_with: Mapping[str, tuple[str, ...]] | None = None
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
    only_with: Mapping[str, tuple[str, ...]] | None = None,
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
        only_with=only_with,
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


def applies(declared: Declaration, values: Mapping[str, Any]) -> bool:
    """Whether a setting applies while its section's fields hold ``values`` (by field name)."""
    return all(values[name] in choices for name, choices in (declared.only_with or {}).items())


def unused_form(field: dataclasses.Field) -> Any:
    """What a setting that does not apply is stored as: ``()``, ``False`` or its default."""
    if field.type.startswith("tuple["):
        return ()
    return False if field.type == "bool" else field.default


def refusal(cls: type, names: list[str], values: Mapping[str, Any], prefix: str = "--") -> str:
    """Why the settings ``names`` (fields of ``cls``), given where they do not apply, are refused.

    Derived from their ``only_with`` rules, each setting named by its flag:
    ``--momentum apply only to --optimizer=sgd, not --optimizer=adam``
    (``prefix=""``: ``momentum apply only to optimizer=sgd, not optimizer=adam``).
    """
    flag = {field.name: declared.flag or field.name for field, declared in declared_fields(cls)}
    by_chooser: dict[str, dict[tuple[str, ...], list[str]]] = {}
    for field, declared in declared_fields(cls):
        if field.name in names:
            chooser, choices = next(
                (name, choices)
                for name, choices in declared.only_with.items()
                if values[name] not in choices
            )
            by_chooser.setdefault(chooser, {}).setdefault(choices, []).append(
                prefix + flag[field.name]
            )
    sentences = []
    for chooser, groups in by_chooser.items():
        setting = f"{prefix}{flag[chooser]}="
        parts = [
            f"{', '.join(refused)} apply only to {' or '.join(setting + c for c in choices)}"
            for choices, refused in groups.items()
        ]
        sentences.append(f"{'; '.join(parts)}, not {setting}{values[chooser]}")
    return "; ".join(sentences)


def _store_unused_forms(obj: Any) -> list[str]:
    """Settings that do not apply must hold their default or unused form; they get the unused form.

    Returns:
      The names of those settings.

    Raises:
      ValueError: one holds another value (the message names the choices it applies to).
    """
    values = {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    unused = [field for field, declared in declared_fields(obj) if not applies(declared, values)]
    given = [f.name for f in unused if values[f.name] not in (f.default, unused_form(f))]
    check(
        not given,
        f"{refusal(type(obj), given, values, prefix='')} "
        f"(got {'; '.join(_show(values[name]) for name in given)})",
    )
    for field in unused:
        object.__setattr__(obj, field.name, unused_form(field))
    return [field.name for field in unused]


def _show(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def check_declared(obj: Any) -> None:
    """Checks types, choices, ``only_with`` rules and bounds of every declared field of ``obj``.

    A setting that does not apply is stored in its unused form and not checked further.

    Raises:
      ValueError: naming the setting (by its flag name) and the value.
    """
    check_types(obj)
    for field, declared in declared_fields(obj):
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
    unused = _store_unused_forms(obj)
    for field, declared in declared_fields(obj):
        if field.name in unused:
            continue
        value, name = getattr(obj, field.name), declared.flag or field.name
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
