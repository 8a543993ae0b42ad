"""One declaration per setting: a dataclass field that carries everything about it.

:func:`setting` stores in the field's metadata its help, bounds or choices,
flag, HParams group and whether it is part of the resume identity. The absl
flags and ``flags.txt`` (``config.flags``), the HParams experiment
(``training.summaries``), the resume identity (``config.saved``) and
:func:`check_declared` read these declarations, so a new setting is one field
(plus its use). Every check raises ``ValueError`` naming the field; checks of
several fields stay in each dataclass's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mnist_research.flagfiles import one_argument

_KEY = "mnist_research"  # the metadata key a declaration is stored under


@dataclasses.dataclass(frozen=True)
class Declaration:
    """What a :func:`setting` knows about its field."""

    help: str  # the flag's help (and the HParams description)
    # "group" or "group/name" in the HParams dashboard; None: deliberately not a
    # hyperparameter (paths, loop mechanics).
    hparam: str | None
    identity: bool  # part of what must match for a run dir to be resumed
    flag: str | bool | None = True  # the absl flag's name; True: the field's; False: no flag
    minimum: float | None = None  # inclusive bounds (of each element of a list setting)
    maximum: float | None = None
    above: float | None = None  # exclusive bounds
    below: float | None = None
    choices: Mapping[str, Any] | tuple[str, ...] | None = None  # a registry's names
    # {field: choices}: the setting applies only while each named field of its section
    # holds one of those choices ({"optimizer": ("sgd",)}); elsewhere it must keep its
    # default and is stored in its unused form (:func:`unused_form`). None: always.
    only_with: Mapping[str, tuple[str, ...]] | None = None
    # (test, requirement): test(value) must hold, else the error says "<flag> <requirement>".
    valid: tuple[Callable[[Any], bool], str] | None = None
    path: bool = False  # a file-system path: flags.txt records it absolute

    def bounds_text(self) -> str:
        """``in [0, 1)``, ``>= 1``, ``> 0``… or ``""`` when unbounded."""
        opening, low = ("[", self.minimum) if self.minimum is not None else ("(", self.above)
        high, closing = (self.maximum, "]") if self.maximum is not None else (self.below, ")")
        if low is not None and high is not None:
            return f"in {opening}{_num(low)}, {_num(high)}{closing}"
        if low is not None:
            return f"{'>=' if opening == '[' else '>'} {_num(low)}"
        if high is not None:
            return f"{'<=' if closing == ']' else '<'} {_num(high)}"
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


def setting(default: Any, help: str, *, hparam: str | None, identity: bool, **rules: Any) -> Any:
    """A dataclass field declared with everything the project derives from it.

    ``hparam`` and ``identity`` have no default: whether a setting is a
    hyperparameter and whether a resumed run must share it are decided for
    every setting, never by omission. ``rules`` are :class:`Declaration`'s
    other attributes (``flag``, bounds, ``choices``, ``only_with``...).
    """
    declared = Declaration(help, hparam, identity, **rules)
    return dataclasses.field(default=default, metadata={_KEY: declared})


def declared_fields(cls_or_obj: Any) -> Iterator[tuple[dataclasses.Field, Declaration]]:
    """``(field, declaration)`` for every declared field, in order, the flag name resolved."""
    for field in dataclasses.fields(cls_or_obj):
        if _KEY in field.metadata:
            declared = field.metadata[_KEY]
            flag = field.name if declared.flag is True else (declared.flag or None)
            yield field, dataclasses.replace(declared, flag=flag)


def applies(declared: Declaration, values: Mapping[str, Any]) -> bool:
    """Whether a setting applies while its section's fields hold ``values`` (by field name)."""
    return all(values[name] in choices for name, choices in (declared.only_with or {}).items())


def unused_form(field: dataclasses.Field) -> Any:
    """What a setting that does not apply is stored as: ``()``, ``False`` or its default, so
    ``config.json`` shows what was built (an MLP has ``conv_filters: []``)."""
    if field.type.startswith("tuple["):
        return ()
    return False if field.type == "bool" else field.default


def refusal(cls: type, values: Mapping[str, Any], prefix: str = "--") -> str:
    """Why the settings of ``cls`` that differ from their default where they do not apply are
    refused (``""``: none), each named by its flag, grouped by their ``only_with`` rules:
    ``--momentum apply only to --optimizer=sgd, not --optimizer=adam``; with ``prefix=""``
    (a config built in code or read back, where the unused form is allowed too):
    ``momentum apply only to optimizer=sgd, not optimizer=adam (got 0.9)``.
    """
    flag = {f.name: prefix + (declared.flag or f.name) for f, declared in declared_fields(cls)}
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}  # (chooser, choices): refused
    given = []  # the refused values, as a config's error shows them
    for field, declared in declared_fields(cls):
        # A flag must keep its default; a config's field may also hold its unused form.
        allowed = [field.default] + ([unused_form(field)] if not prefix else [])
        if applies(declared, values):
            continue
        value = values[field.name]
        if value in allowed:
            continue
        chooser = next(name for name, ok in declared.only_with.items() if values[name] not in ok)
        groups.setdefault((chooser, declared.only_with[chooser]), []).append(flag[field.name])
        given.append(",".join(map(str, value)) if isinstance(value, tuple) else str(value))
    by_chooser: dict[str, list[str]] = {}
    for (chooser, choices), refused in groups.items():
        allowed = " or ".join(f"{flag[chooser]}={choice}" for choice in choices)
        by_chooser.setdefault(chooser, []).append(f"{', '.join(refused)} apply only to {allowed}")
    text = "; ".join(
        f"{'; '.join(parts)}, not {flag[chooser]}={values[chooser]}"
        for chooser, parts in by_chooser.items()
    )
    return f"{text} (got {'; '.join(given)})" if given and not prefix else text


def check(condition: bool, message: str) -> None:
    """Raises ``ValueError(message)`` unless ``condition`` holds."""
    if not condition:
        raise ValueError(message)


def _is_int(value: Any) -> bool:
    """An integer (NumPy's too), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite real number (NumPy's too), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_list(element: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, (list, tuple)) and all(map(element, value))


# Per annotation: the test a value must pass, what it is stored as, how the error names it.
_TYPES = {
    "int": (_is_int, int, "int"),
    "float": (_is_number, float, "a finite number"),
    "bool": (lambda v: isinstance(v, bool), bool, "bool"),
    "str": (lambda v: isinstance(v, str), str, "str"),
    "str | None": (lambda v: v is None or isinstance(v, str), lambda v: v, "str | None"),
    "tuple[int, ...]": (_is_list(_is_int), lambda v: tuple(map(int, v)), "a list of ints"),
    "tuple[float, ...]": (_is_list(_is_number), tuple, "a list of floats"),
}


def _typed(field: dataclasses.Field, value: Any) -> Any:
    """``value`` checked against ``field``'s annotation and stored as that type (a list as a
    tuple, an int in a float field as a float).

    The dataclasses are also built from ``config.json``, which may have been
    edited by hand: a string where a number belongs must fail here, naming the
    field, not deep inside training.
    """
    if field.type not in _TYPES:  # a new setting's annotation: give it a row above
        raise TypeError(f"{field.name}: no type check for the annotation {field.type!r}")
    test, store, expected = _TYPES[field.type]
    check(test(value), f"{field.name} must be {expected}, got {value!r}")
    integers = {"int": [value], "tuple[int, ...]": value}.get(field.type, [])
    # TensorFlow holds 64-bit integers: a wider one would fail deep inside a run, not here.
    check(
        all(-(2**63) <= v < 2**63 for v in integers),
        f"{field.name} must be below 2**63, got {value!r}",
    )
    return store(value)


def check_same_length(obj: Any, first: str, second: str) -> None:
    """The sequence fields ``first`` and ``second`` have as many values each."""
    a, b = getattr(obj, first), getattr(obj, second)
    check(
        len(a) == len(b),
        f"{first} ({len(a)} values) and {second} ({len(b)} values) must have the same length",
    )


def check_declared(obj: Any) -> None:
    """Checks types, choices, ``only_with`` rules and bounds of every declared field of ``obj``.

    A setting that does not apply must hold its default or unused form (else the
    error names the choices it applies to); it is stored in its unused form and
    not checked further.
    """
    for field, declared in declared_fields(obj):
        value, name = _typed(field, getattr(obj, field.name)), declared.flag or field.name
        object.__setattr__(obj, field.name, value)
        if declared.choices is not None and value is not None:
            choices = list(declared.choices)
            check(value in choices, f"{name} must be one of {', '.join(choices)}, got {value!r}")
        if isinstance(value, str):
            check(
                one_argument(f"--{name}={value}"),
                f"{name} must be one line of UTF-8 text not ending in white space "
                f"(flags.txt holds one flag a line), got {value!r}",
            )
    values = {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    refused = refusal(type(obj), values, prefix="")
    check(not refused, refused)
    for field, declared in declared_fields(obj):
        value, name = values[field.name], declared.flag or field.name
        if not applies(declared, values):
            object.__setattr__(obj, field.name, unused_form(field))
            continue
        if declared.valid is not None:
            test, requirement = declared.valid
            check(test(value), f"{name} {requirement}, got {value!r}")
        bounds = declared.bounds_text()
        if bounds and isinstance(value, tuple):
            check(
                all(declared.within(v) for v in value),
                f"{name} must all be {bounds}, got {list(value)}",
            )
        elif bounds and value is not None:  # _typed has refused NaN and infinities
            check(declared.within(value), f"{name} must be {bounds}, got {value}")
