"""Flagfiles that work from any folder: nested ``--flagfile=`` lines found from the including file.

absl reads a ``--flagfile=`` line inside a flagfile relative to the working
directory, so ``experiments/cnn.flags`` (which includes
``--flagfile=experiments/baseline.flags``) would work only from the repository
root. :func:`expand` resolves a relative nested path against the folder of the
file that includes it, then each folder above that one (so a path written
relative to the repository root is found), then the working directory.
Top-level ``--flagfile`` arguments are relative to the working directory, as a
shell user expects.
"""

from __future__ import annotations

import os
import re

from absl import flags

from mnist_research import files

_FLAGFILE = re.compile(r"^--?flagfile(?:=(.*))?$")


def expand(argv: list[str]) -> list[str]:
    """``argv`` with every ``--flagfile`` before any ``--`` replaced by the flags its file holds
    (``absl.flags.Error`` if a flagfile cannot be read, or includes itself)."""
    out, rest = argv[:1], argv[1:]
    while rest:
        arg, *rest = rest
        if arg == "--":
            return out + [arg] + rest
        match = _FLAGFILE.match(arg)
        if not match:
            out.append(arg)
            continue
        path = match.group(1)
        if path is None:
            if not rest:
                raise flags.Error("--flagfile needs a file name")
            path, *rest = rest
        out += _read(os.path.abspath(path), ())
    return out


def _read(path: str, including: tuple[str, ...]) -> list[str]:
    """The flags of one flagfile, nested flagfiles expanded."""
    if path in including:
        raise flags.Error(f"{path}: the flagfile includes itself")
    try:
        text = files.read_bounded(path, files.TEXT_LIMIT).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise flags.Error(
            f"{path}: cannot read the flagfile ({getattr(e, 'strerror', None) or e})"
        ) from None
    out = []
    for line in arguments(text):
        match = _FLAGFILE.match(line)
        if match and match.group(1):
            out += _read(_nested(match.group(1), path), including + (path,))
        else:
            out.append(line)
    return out


def arguments(text: str) -> list[str]:
    """A flagfile's arguments: one a line, stripped; blank and comment lines skipped."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "//"))]


def one_argument(argument: str) -> bool:
    """Whether a flagfile line reads back as exactly ``argument`` (and can be written as UTF-8).

    A value holding a line break, or ending in white space, would read back
    as something else: another flag, or a shortened value.
    """
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return arguments(argument) == [argument]


def _nested(name: str, including_file: str) -> str:
    folder = os.path.dirname(including_file)
    while not os.path.isabs(name) and not os.path.isfile(os.path.join(folder, name)):
        if os.path.dirname(folder) == folder:  # past the root: the working directory
            return os.path.abspath(name)
        folder = os.path.dirname(folder)
    return os.path.join(folder, name)
