"""What a command prints: the project's own lines, and TensorFlow's only when asked for.

1. :func:`quiet_tensorflow` imports TensorFlow with ``TF_CPP_MIN_LOG_LEVEL=3``
   (C++ errors such as ``failed call to cuInit`` on every CPU-only machine,
   grappler's ``Optimization loop failed: CANCELLED``) and with its banner lines
   filtered out of file descriptor 2: its native libraries print them as they
   load, before its C++ logging is initialized, so ``TF_CPP_MIN_LOG_LEVEL`` does
   not stop them; all of them load during ``import tensorflow`` (an extension
   module imported later prints nothing). A command calls it after parsing its
   flags, so a bad argument fails before the import.
2. :func:`configure`, once the verbosity is known: TensorFlow's and Keras's
   INFO lines and Keras's ``UserWarning``\\ s are dropped, and absl's lines lose
   their ``I1125 14:00:00.123456 1234 file.py:45]`` prefix. Warnings and errors
   keep a ``warning:``/``error:`` prefix.

``--verbosity=1`` (or a ``TF_CPP_MIN_LOG_LEVEL`` the user set) brings all of it
back. A notebook calls both itself, before importing TensorFlow (Jupyter shows
what the kernel writes to file descriptor 2).
"""

from __future__ import annotations

import contextlib
import logging as std_logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence

from absl import flags, logging

# TensorFlow's start-up banner (2.21 loads two native libraries while it is imported:
# two of each line).
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


def quiet_tensorflow() -> bool:
    """Imports TensorFlow without its start-up banner, unless the user asked for its messages;
    whether it did (not if TensorFlow was already imported)."""
    asked = "TF_CPP_MIN_LOG_LEVEL" in os.environ or logging.get_verbosity() >= 1
    if asked or "tensorflow" in sys.modules:
        return False
    # C++ FATAL only; the errors that matter reach Python as exceptions.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with stderr_without(LIBRARY_LOAD_NOISE):
        import tensorflow  # noqa: F401
    return True


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


def _without_framework_info(record: std_logging.LogRecord) -> bool:
    """Drops records below WARNING logged from the code of ``FRAMEWORK_PACKAGES`` (a
    package that logged is imported: its folders are the ones in ``sys.modules``)."""
    if record.levelno >= std_logging.WARNING:
        return True
    folders = tuple(
        os.path.join(folder, "")
        for name in FRAMEWORK_PACKAGES
        for folder in getattr(sys.modules.get(name), "__path__", ())
    )
    return not record.pathname.startswith(folders)


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
    """Sets what reaches the terminal for absl's ``verbosity`` (0 = INFO, 1 = DEBUG,
    -1 = WARNING; ``None``: the one absl parsed from ``--verbosity``)."""
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
    handler.removeFilter(_without_framework_info)
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
    # Checkpoint sharding durations, export temp paths, signature renames.
    tf_logger.setLevel(std_logging.WARNING)
    handler.addFilter(_without_framework_info)
    handler.setFormatter(PlainFormatter())
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")
    # tf.data's note that distributed datasets cannot carry their options across
    # serialization: printed on every multi-replica run, nothing for the user to act on.
    warnings.filterwarnings(
        "ignore", category=UserWarning, message="To make it possible to preserve tf.data options"
    )


def interactive_output() -> bool:
    """Whether stdout redraws in place: a terminal, or a notebook (IPython kernel)."""
    return "ipykernel" in sys.modules or (hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
