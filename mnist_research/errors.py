"""The project's error types, and how an entry point reports one (:func:`run_guarded`)."""

import contextlib
import re
import sys
from collections.abc import Callable, Iterator

from absl import logging


class MnistResearchError(Exception):
    """Base class: an error a user can act on, described in one line."""


class DataError(MnistResearchError):
    """Data that cannot be read or fails validation."""


class RunDirError(MnistResearchError):
    """The run dir cannot be used (unwritable, in use, damaged, or a different experiment)."""


class ConfigError(MnistResearchError):
    """Settings that cannot work together (e.g. batch size vs. data or replicas)."""


class ImageError(MnistResearchError):
    """An input image that cannot be read or holds no digit."""


class NonFiniteLossError(MnistResearchError):
    """Training produced a NaN or Inf loss."""


def printable(text: str) -> str:
    """``text`` on one line: line breaks and other unprintable characters escaped as in Python."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``, without TensorFlow's op and function names."""
    text = getattr(error, "message", None) or getattr(error, "strerror", None) or str(error)
    text = re.sub(r"\{\{function_node [^}]*\}\}|\[Op:[^\]]*\].*", "", str(text))
    lines = text.strip().splitlines()
    return f"{type(error).__name__}: {lines[0].strip() if lines else ''}".rstrip(": ")


def cause(error: BaseException) -> str:
    """What went wrong, in a few words: ``No space left on device``.

    An ``OSError``'s own text; TensorFlow's file errors say ``<file>; <text>``
    with the file a temporary one of its own, so only the text is kept.
    """
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = one_line(error)
    match = re.match(r"^\w+: \S*/\S*; (.+)$", text)
    return match.group(1) if match else text


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """A file-system or TensorFlow error while the block writes ``path`` becomes a
    :class:`RunDirError` naming it: ``<path>: cannot write (<cause>)``."""
    try:
        yield
    except (OSError, *_tensorflow_errors()) as e:
        raise RunDirError(f"{path}: cannot write ({cause(e)})") from None


def _tensorflow_errors() -> tuple[type, ...]:
    """TensorFlow's runtime error type, if TensorFlow is loaded (this module does not load it)."""
    tf = sys.modules.get("tensorflow")
    errors = getattr(tf, "errors", None)
    return (errors.OpError,) if errors is not None else ()


def run_guarded(body: Callable[[], int]) -> int:
    """Runs an entry point's ``body``; a project error, an ``OSError`` or a TensorFlow
    ``OpError`` becomes one line and exit 1 (the traceback is logged only at
    ``--verbosity=1`` or more), Ctrl-C one line and exit status 130."""
    try:
        return body()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MnistResearchError as e:
        error, message = e, str(e)
    except OSError as e:  # e.g. the disk filled up while writing a report
        where = f"{e.filename}: " if e.filename else ""
        error, message = e, f"{where}{e.strerror or e}"
    except _tensorflow_errors() as e:  # a file or device failed inside a TensorFlow op
        error, message = e, one_line(e)
    if logging.get_verbosity() >= logging.DEBUG:
        logging.error("Traceback", exc_info=error)
    print(f"error: {printable(message)}", file=sys.stderr)
    return 1
