"""The project's error types.

Entry points catch :class:`MnistResearchError` and print its one-line message
(no traceback unless ``--verbosity`` is raised) before exiting non-zero.
"""

import sys
from typing import Callable

from absl import logging


class MnistResearchError(Exception):
    """Base class: an error a user can act on, described in one line."""


class DataError(MnistResearchError):
    """Data that cannot be read or fails validation."""


class RunDirError(MnistResearchError):
    """The run dir cannot be used (unwritable, or holds a different experiment)."""


class ConfigError(MnistResearchError):
    """Settings that cannot work together (e.g. batch size vs. data or replicas)."""


class ImageError(MnistResearchError):
    """An input image that cannot be read or holds no digit."""


class NonFiniteLossError(MnistResearchError):
    """Training produced a NaN or Inf loss."""


def run_guarded(body: Callable[[], int]) -> int:
    """Runs an entry point's ``body``; a project error becomes one line and exit 1.

    So does an ``OSError`` (disk full, permissions) raised while writing outputs.

    The traceback is logged only when ``--verbosity`` is 1 or higher.
    """
    try:
        return body()
    except MnistResearchError as e:
        message = str(e)
    except OSError as e:  # e.g. the disk filled up while writing a report or metrics.json
        where = f"{e.filename}: " if e.filename else ""
        message = f"{where}{e.strerror or e}"
    if logging.get_verbosity() >= logging.DEBUG:
        logging.exception("Traceback")
    print(f"error: {message}", file=sys.stderr)
    return 1
