"""Validation helpers the config dataclasses share: type checks and ``ValueError`` messages.

Every helper raises ``ValueError`` with a message that names the offending field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from typing import Any

# A TensorFlow device name: [/job:J[/replica:R][/task:T]]/[device:]CPU|GPU|TPU:N.
_DEVICE = re.compile(
    r"^(/job:[\w-]+(/replica:\d+)?(/task:\d+)?)?/?(device:)?(cpu|gpu|tpu):\d+$", re.IGNORECASE
)


def is_device_name(name: str | None) -> bool:
    """Whether ``name`` is ``None`` or a device name such as ``/cpu:0`` or ``/gpu:1``."""
    return name is None or bool(_DEVICE.match(name))


def check(condition: bool, message: str) -> None:
    """Raises ``ValueError(message)`` unless ``condition`` holds."""
    if not condition:
        raise ValueError(message)


def is_int(value: Any) -> bool:
    """An integer (NumPy's too), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def fits_int64(value: Any) -> bool:
    """An integer TensorFlow can hold: a wider one fails deep inside a run, not here."""
    return is_int(value) and -(2**63) <= value < 2**63


def is_number(value: Any) -> bool:
    """A real number (NumPy's too), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_types(obj: Any) -> None:
    """Checks every field against its annotation; floats accept ints (and become floats).

    The dataclasses are also built from ``config.json``, which may have been
    edited by hand: a string where a number belongs must fail here, naming the
    field, not deep inside training.
    """
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        kind = str(field.type).replace("Optional[str]", "str | None").replace("Tuple[", "tuple[")
        if kind == "int":
            ok = is_int(value)
            if ok:
                object.__setattr__(obj, field.name, int(value))
        elif kind == "float":
            ok = is_number(value) and math.isfinite(value)
            if ok:
                object.__setattr__(obj, field.name, float(value))
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "str":
            ok = isinstance(value, str)
        elif kind == "str | None":
            ok = value is None or isinstance(value, str)
        elif kind.startswith("tuple["):
            element = is_int if "int" in kind else is_number
            ok = (
                isinstance(value, (list, tuple))
                and all(element(v) for v in value)
                and all(math.isfinite(v) for v in value)
            )
        else:
            ok = True  # nested configs check themselves
        expected = (
            "a finite number"
            if kind == "float"
            else kind.replace("tuple[", "a list of ").replace(", ...]", "s")
        )
        check(ok, f"{field.name} must be {expected}, got {value!r}")
        integers = {"int": [value], "tuple[int, ...]": value}.get(kind, [])
        check(
            all(fits_int64(v) for v in integers), f"{field.name} must be below 2**63, got {value!r}"
        )


def check_same_length(obj: Any, first: str, second: str) -> None:
    """The sequence fields ``first`` and ``second`` have as many values each."""
    a, b = getattr(obj, first), getattr(obj, second)
    check(
        len(a) == len(b),
        f"{first} ({len(a)} values) and {second} ({len(b)} values) must have the same length",
    )
