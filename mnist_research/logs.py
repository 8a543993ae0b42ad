"""What a command prints: the project's own lines, and TensorFlow's only when asked for.

Two steps, because TensorFlow decides part of its logging when it is imported:

1. :func:`quiet_tensorflow`, before TensorFlow is imported: sets
   ``TF_CPP_MIN_LOG_LEVEL=3`` (C++ errors such as ``failed call to cuInit`` on
   every CPU-only machine, grappler's ``Optimization loop failed: CANCELLED``)
   and filters the banner lines out of file descriptor 2 while TensorFlow loads
   its native libraries (``cudart_stub``, ``cpu_feature_guard``, oneDNN's
   ``custom operations are on``). Each library prints them as it is loaded,
   before TensorFlow's C++ logging is initialized, so ``TF_CPP_MIN_LOG_LEVEL``
   does not stop them; the libraries load when ``tensorflow`` is imported and
   when a ``tensorflow`` extension module is imported later. Nothing changes
   when the user set ``TF_CPP_MIN_LOG_LEVEL`` or asked for ``--verbosity=1``
   or more. A command that starts another (``sweep``) gives it
   :func:`child_environment`, which leaves ``TF_CPP_MIN_LOG_LEVEL`` out when
   this module set it, so the child decides for itself from its own flags
   instead of taking the variable for the user's choice.
2. :func:`configure`, once the verbosity is known: the ``tensorflow`` Python
   logger drops its INFO lines (checkpoint sharding durations, export temp
   paths, signature renames) and Keras's ``UserWarning``\\ s are ignored at the
   default verbosity; absl's lines lose their
   ``I1125 14:00:00.123456 1234 file.py:45]`` prefix (time, thread and source
   line are for debugging the code; ``--verbosity=1`` brings them back along
   with everything TensorFlow says). Warnings and errors keep a
   ``warning:``/``error:`` prefix.

A notebook calls both itself, before importing TensorFlow (Jupyter shows what
the kernel writes to file descriptor 2, TensorFlow's C++ lines included).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging as std_logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence

from absl import flags, logging

TF_LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_TF_LOG_LEVEL = "3"  # C++ FATAL only; errors that matter reach Python as exceptions

# Lines each TensorFlow native library writes to stderr as it is loaded, whatever
# TF_CPP_MIN_LOG_LEVEL says (TensorFlow 2.21 loads two while it is imported: two of each).
LIBRARY_LOAD_NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
        r"STDERR$",
        r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
        r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
        r"^To enable the following instructions: .* with the appropriate compiler flags\.$",
        # On CPUs with AVX512_VNNI or AVX512_BF16, or with TF_ENABLE_ONEDNN_OPTS=1.
        r"port\.cc:\d+\] oneDNN custom operations are on\. ",
    )
)

# The TF_CPP_MIN_LOG_LEVEL value quiet_tensorflow put in os.environ (None: it set none).
_level_set_here: str | None = None

_VERBOSITY_ARG = re.compile(r"^(?:--verbosity|-v)(?:=(-?\d+))?$")


def requested_verbosity(argv: Sequence[str]) -> int:
    """The ``--verbosity``/``-v`` value on a command line (absl's flag; default 0)."""
    verbosity = 0
    for i, arg in enumerate(argv):
        match = _VERBOSITY_ARG.match(arg)
        if not match:
            continue
        value = match.group(1)
        if value is None and i + 1 < len(argv):
            value = argv[i + 1]
        try:
            verbosity = int(value)
        except (TypeError, ValueError):
            pass
    return verbosity


def quiet_tensorflow(argv: Sequence[str] = ()) -> bool:
    """Makes TensorFlow quiet from its import on, unless the user asked for its messages.

    Sets ``TF_CPP_MIN_LOG_LEVEL`` and filters the banner out of stderr whenever
    TensorFlow loads a native library: when it is imported, whenever that
    happens (a command that never needs TensorFlow, like ``sweep``, does not
    import it for this), and when one of its extension modules is imported later.

    Args:
      argv: the command line (its ``--verbosity`` decides); a notebook passes none.

    Returns:
      Whether TensorFlow will be quiet (False when it was already imported,
      the user set ``TF_CPP_MIN_LOG_LEVEL``, or ``--verbosity`` is 1 or more).
    """
    global _level_set_here
    if (
        "tensorflow" in sys.modules
        or TF_LOG_LEVEL_VARIABLE in os.environ
        or requested_verbosity(argv) >= 1
    ):
        return False
    os.environ[TF_LOG_LEVEL_VARIABLE] = QUIET_TF_LOG_LEVEL
    _level_set_here = QUIET_TF_LOG_LEVEL
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
    return True


def child_environment() -> dict[str, str]:
    """The environment for a project command this process starts.

    ``os.environ`` without the ``TF_CPP_MIN_LOG_LEVEL`` that
    :func:`quiet_tensorflow` set: the child quiets TensorFlow itself, or not,
    from its own ``--verbosity``, and keeps showing everything when the user
    set the variable. (A child given the variable would take it for the
    user's choice and show TensorFlow's banner lines.)
    """
    env = dict(os.environ)
    if _level_set_here is not None and env.get(TF_LOG_LEVEL_VARIABLE) == _level_set_here:
        del env[TF_LOG_LEVEL_VARIABLE]
    return env


def _is_tensorflow(name: str) -> bool:
    return name == "tensorflow" or name.startswith("tensorflow.")


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds TensorFlow's modules with a loader that filters their load's noise out of stderr.

    It wraps the import of the ``tensorflow`` package (everything imported
    within it is covered by that one filter) and, after it, of every
    extension module under ``tensorflow``: loading a native library prints
    the banner again. It stays in ``sys.meta_path`` for good: libraries look
    TensorFlow up (``importlib.util.find_spec``) before they import it, and
    TensorFlow imports some of its modules lazily.
    """

    def __init__(self):
        self.filtering = False

    def find_spec(self, name, path=None, target=None):
        if self.filtering or not _is_tensorflow(name) or name in sys.modules:
            return None
        spec = self._spec_from_other_finders(name, path, target)
        if spec is None or spec.loader is None:
            return None
        if name == "tensorflow" or isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            spec.loader = _QuietLoader(spec.loader, self)
        return spec

    def _spec_from_other_finders(self, name, path, target):
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                return spec
        return None


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader with the library-load noise filtered out of stderr.

    An extension module's native library is loaded in ``create_module``, a
    package's submodules in ``exec_module``: both are filtered.
    """

    def __init__(self, loader, finder: _QuietTensorFlowFinder):
        self.loader = loader
        self.finder = finder

    def create_module(self, spec):
        with self._filtered():
            return self.loader.create_module(spec)

    def exec_module(self, module):
        with self._filtered():
            self.loader.exec_module(module)

    @contextlib.contextmanager
    def _filtered(self) -> Iterator[None]:
        if self.finder.filtering:  # already inside the package's filter
            yield
            return
        self.finder.filtering = True
        try:
            with stderr_without(LIBRARY_LOAD_NOISE):
                yield
        finally:
            self.finder.filtering = False

    def __getattr__(self, name):  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)


@contextlib.contextmanager
def stderr_without(patterns: Sequence[re.Pattern]) -> Iterator[None]:
    """Captures file descriptor 2 (C++ and Python writes alike) and replays it
    without the lines matching ``patterns``, also when the body raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = [
                line for line in lines if not any(p.search(line.rstrip("\n")) for p in patterns)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


# Packages whose INFO lines are about TensorFlow's internals, not the run. Recent
# TensorFlow logs through absl directly (not only the ``tensorflow`` logger); tf2onnx
# (the ONNX export) logs its opset and graph optimizations.
FRAMEWORK_PACKAGES = ("tensorflow", "keras", "tensorboard", "tf_keras", "tf2onnx")


def _package_dirs(names: Sequence[str]) -> tuple[str, ...]:
    dirs = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        for location in (spec.submodule_search_locations or []) if spec else []:
            dirs.append(os.path.join(os.path.realpath(location), ""))
    return tuple(dirs)


class FrameworkInfoFilter(std_logging.Filter):
    """Drops records below WARNING logged from TensorFlow's, Keras's or TensorBoard's code."""

    def __init__(self):
        super().__init__()
        self.dirs = _package_dirs(FRAMEWORK_PACKAGES)

    def filter(self, record: std_logging.LogRecord) -> bool:
        if record.levelno >= std_logging.WARNING or not self.dirs:
            return True
        return not os.path.realpath(record.pathname).startswith(self.dirs)


class PlainFormatter(std_logging.Formatter):
    """The message alone; ``warning:``/``error:`` in front of those levels."""

    def format(self, record: std_logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= std_logging.ERROR:
            return f"error: {message}"
        if record.levelno >= std_logging.WARNING:
            return f"warning: {message}"
        return message


def configure(verbosity: int | None = None) -> None:
    """Sets what reaches the terminal for a command's (or a notebook's) verbosity.

    Args:
      verbosity: absl's verbosity (0 = INFO, 1 = DEBUG, -1 = WARNING);
        ``None`` keeps the one absl parsed from ``--verbosity``.
    """
    if not flags.FLAGS.is_parsed():
        # A notebook or script, not a command run by absl.app: absl logs its own
        # "Logging before flag parsing" warning until its flags count as parsed.
        flags.FLAGS.mark_as_parsed()
        logging.use_absl_handler()
    if verbosity is None:
        verbosity = logging.get_verbosity()
    else:
        logging.set_verbosity(verbosity)
    handler = logging.get_absl_handler()
    for old in [f for f in handler.filters if isinstance(f, FrameworkInfoFilter)]:
        handler.removeFilter(old)
    # Matplotlib's font search and Pillow's PNG chunks log hundreds of DEBUG lines
    # (findfont scores) when absl's verbosity opens the root logger to DEBUG; they
    # say nothing about the run, at any verbosity. A level someone set on them
    # (a notebook user debugging a figure) is theirs to keep.
    for library in ("matplotlib", "PIL"):
        library_logger = std_logging.getLogger(library)
        if library_logger.level == std_logging.NOTSET:
            library_logger.setLevel(std_logging.INFO)
    tf_logger = std_logging.getLogger("tensorflow")
    if verbosity >= 1:
        tf_logger.setLevel(std_logging.DEBUG)
        handler.setFormatter(logging.PythonFormatter())
        return
    tf_logger.setLevel(std_logging.WARNING)
    handler.addFilter(FrameworkInfoFilter())
    handler.setFormatter(PlainFormatter())
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")
    # tf.data's note that distributed datasets cannot carry their options across
    # serialization: printed on every multi-replica run, nothing for the user to act on.
    warnings.filterwarnings(
        "ignore", category=UserWarning, message="To make it possible to preserve tf.data options"
    )


def running_a_command() -> bool:
    """Whether this process runs one of the project's commands.

    True for ``python -m mnist_research.<command>`` and the ``mnist-<command>``
    scripts; False when a test or notebook imports a command module.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name.startswith("mnist_research."):
        return True
    return os.path.basename(sys.argv[0] if sys.argv else "").startswith("mnist-")


def interactive_output() -> bool:
    """Whether stdout redraws in place: a terminal, or a notebook (IPython kernel)."""
    return "ipykernel" in sys.modules or (hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
