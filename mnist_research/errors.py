"""The project's error types.

Entry points catch :class:`MnistResearchError` and print its one-line message
(no traceback unless ``--verbosity`` is raised) before exiting non-zero.
"""


class MnistResearchError(Exception):
    """Base class: an error a user can act on, described in one line."""


class DataError(MnistResearchError):
    """Data that cannot be read or fails validation."""


class RunDirError(MnistResearchError):
    """The run dir cannot be used (unwritable, or holds a different experiment)."""


class ConfigError(MnistResearchError):
    """Settings that cannot work together (e.g. batch size vs. data or replicas)."""


class NonFiniteLossError(MnistResearchError):
    """Training produced a NaN or Inf loss."""
