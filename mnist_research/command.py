"""What every command shares: flags defined only when it runs, listed by its ``--help``.

A command module defines ``define_flags(flag_values)`` and ``main(argv)`` and ends
with ``command.run(main, define_flags, __doc__)``. Nothing is defined at import
time, so any number of command modules can be imported in one process (a
notebook, a test), and ``--help`` shows exactly the running command's flags, for
``python -m mnist_research.<name>`` and the ``mnist-<name>`` scripts alike.

``run`` sets the log format and levels from ``--verbosity``; a command that
needs TensorFlow imports it with :func:`mnist_research.logs.quiet_tensorflow`
after its flags are parsed, so a bad argument fails at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from absl import app, flags

from mnist_research import flagfiles, logs
from mnist_research.errors import printable, run_guarded


def run(
    main: Callable[[list[str]], int],
    define_flags: Callable[[flags.FlagValues], None],
    doc: str | None,
) -> None:
    """Defines the command's flags on absl's ``FLAGS``, then runs ``main`` under absl.

    ``doc`` is the command module's docstring, the top of its ``--help``.
    """
    before = set(flags.FLAGS)
    define_flags(flags.FLAGS)
    own = sorted(set(flags.FLAGS) - before)
    main_module = sys.modules["__main__"]
    if doc and not getattr(main_module, "__doc__", None):
        main_module.__doc__ = doc  # a console script's stub has none
    program = os.path.basename(sys.argv[0]).removesuffix(".py")
    if program == "__main__":  # python -m mnist_research runs train
        program = "train"
    app.run(
        lambda argv: _configure_logs_then(main, argv),
        flags_parser=lambda argv: _parse_flags(argv, lambda: _help(own, doc, program)),
    )


_SHORT_HELP = {"--help", "-help", "-h", "-?", "--helpshort"}
_HELP = _SHORT_HELP | {"--helpfull", "--helpxml"}


def _asked(argv: list[str]) -> set[str]:
    """The help flags among the flags of ``argv`` (``--help=true`` as ``--help``)."""
    arguments = argv[1 : argv.index("--") if "--" in argv else len(argv)]
    named = (a.partition("=") for a in arguments)
    return {name for name, eq, value in named if not eq or value.lower() in ("true", "1")}


def _parse_flags(argv: list[str], help_: Callable[[], str] | None = None) -> list[str]:
    """absl's parsing, with a bad flag value reported as one ``error:`` line (exit 1).

    With ``help_``, ``--help`` (``-h``, ``--helpshort``, also from a flagfile)
    prints ``help_()`` and exits 0; so does absl's own ``--helpfull`` (absl exits 1).
    """
    try:
        expanded = flagfiles.expand(argv)  # nested flagfiles from any folder
        asked = _asked(expanded)
        if help_ is not None and asked & _SHORT_HELP:
            sys.stdout.write(help_())
            sys.exit(0)
        return flags.FLAGS(expanded)
    except flags.Error as e:
        _usage_error(str(e))
    except SystemExit as e:
        sys.exit(0 if e.code == 1 and asked & _HELP else e.code)


def _help(own: list[str], doc: str | None, program: str) -> str:
    from mnist_research import command_help  # only when --help is asked for

    return command_help.help_text(flags.FLAGS, own, doc, program)


def _configure_logs_then(main: Callable[[list[str]], int], argv: list[str]) -> int:
    logs.configure()  # --verbosity is parsed by now
    try:
        return main(argv)
    except app.UsageError as e:  # absl would print the whole --help above it
        _usage_error(str(e))


def _usage_error(message: str) -> None:
    print(f"error: {printable(message)} (--help lists the flags)", file=sys.stderr, flush=True)
    sys.exit(1)


def main_without_arguments(body: Callable[[], int]) -> Callable[[list[str]], int]:
    """``main(argv)`` of a command that takes flags only: it refuses positional
    arguments, then runs ``body`` under :func:`~mnist_research.errors.run_guarded`."""

    def main(argv: list[str]) -> int:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        return run_guarded(body)

    return main


def define_logdir_flag(fv: flags.FlagValues, help_text: str) -> None:
    """``--logdir`` (default ``runs``), the folder that holds the run dirs."""
    flags.DEFINE_string("logdir", "runs", help_text, flag_values=fv)
