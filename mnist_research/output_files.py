"""Refusing, before a command writes anything, an output that would replace a user's file.

The commands that write to paths their user names (``compare``, ``sweep``,
``benchmark``, ``predict --save_dir``, ``predict_robustness --examples_dir``)
check them here first. ``train`` writes only into a run dir, which
:mod:`mnist_research.rundir` guards.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from mnist_research.files import atomic_write_text


def starts_with_mark(path: str, mark: bytes, within: int = 4096) -> bool:
    """Whether ``mark`` is among the first ``within`` bytes of the file (a bounded read)."""
    try:
        with open(path, "rb") as f:
            return mark in f.read(within)
    except OSError:
        return False


# The text chunk every figure of the project carries in its PNG header.
FIGURE_MARK = b"tEXtSoftware\0mnist_research"


def check_outputs(outputs: list[str], inputs: list[str], ours: Callable[[str], bool]) -> None:
    """Refuses, before anything is written, an output that would replace a user's file.

    That is an output that is one of ``inputs`` (the same path, a link to it,
    or a hard link), or anything already at an output's path other than a
    regular file that ``ours(path)`` recognises as written by this project.

    Raises:
      FileExistsError: naming the output and why.
    """
    for out in outputs:
        same = [p for p in inputs if _same_file(out, p)]
        if same:
            _refuse(out, f"it is the input {same[0]}")
        if os.path.lexists(out) and not (
            os.path.isfile(out) and not os.path.islink(out) and ours(out)
        ):
            _refuse(out, "it exists and was not written by this project")


def claim_folder(path: str, mark: str) -> None:
    """Makes ``path`` a folder this project writes into, or refuses it before anything is written.

    A folder is the project's when it is new, empty, or holds the ``mark`` file
    an earlier call wrote; anything else (a user's folder with files in it, a
    link, a file) is refused, so nothing in it can be replaced.

    Raises:
      FileExistsError: naming the folder and why.
    """
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        _refuse(path, "it is not a folder")
    if os.path.isdir(path) and os.listdir(path):
        marked = os.path.join(path, mark)
        if not (os.path.isfile(marked) and not os.path.islink(marked)):
            _refuse(path, "it holds files this command did not write")
    os.makedirs(path, exist_ok=True)
    atomic_write_text(os.path.join(path, mark), "written by mnist_research\n")


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _refuse(path: str, why: str) -> None:
    raise FileExistsError(errno.EEXIST, f"not replaced: {why}; nothing was written", path)


def starts_by_kind(starts: dict[str, bytes]) -> Callable[[str], bool]:
    """A test of whether the project wrote a file, for :func:`check_outputs`.

    Args:
      starts: what each kind of text file (by extension) the project writes
        begins with; a ``.png`` is the project's when it carries :data:`FIGURE_MARK`.
    """

    def ours(path: str) -> bool:
        extension = os.path.splitext(path)[1]
        if extension == ".png":
            return starts_with_mark(path, FIGURE_MARK)
        start = starts.get(extension)
        return start is not None and starts_with_mark(path, start, within=len(start))

    return ours
