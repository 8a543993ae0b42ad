"""The train command run in this process for the checks around a killed or stopped one.

A signal, a SIGKILL and their exit status need a process of their own; the resume or
rerun that follows needs none: :func:`run_logged` runs it with
:func:`tests.helpers.run_main`, with the lines it logs ("Restored ...", "epoch 2/3") in
the stderr it returns, as a real process prints them.
"""

import contextlib
import logging

from tests.helpers import REPO, run_main


def run_logged(module: str, *args: str):
    """:func:`tests.helpers.run_main` from the repository root, absl's lines in its stderr.

    ``run_main`` points absl's handler at the stderr it captures, but two things
    ``absl.app.run`` does for a real command are missing under pytest: the handler on
    the root logger (pytest's own handlers take the records) and ``--verbosity`` raised
    from absl's default -1 (WARNING) to 0 (INFO) when the command line does not set it.
    Both are done for the call, and the logging levels put back after it.
    """
    from absl import flags
    from absl import logging as absl_logging

    from mnist_research import command

    handler = absl_logging.get_absl_handler()
    root, absl_logger = logging.getLogger(), logging.getLogger("absl")
    saved = (root.level, absl_logger.level, command._configure_logs_then)
    attached = handler in root.handlers
    configure_logs_then = command._configure_logs_then

    def like_app_run(main, argv):
        if not flags.FLAGS["verbosity"].present:
            flags.FLAGS.verbosity = 0  # absl.app.run's default: INFO
        return configure_logs_then(main, argv)

    if not attached:
        root.addHandler(handler)
    command._configure_logs_then = like_app_run
    try:
        with contextlib.chdir(REPO):  # the relative --flagfile and paths a command is given
            return run_main(module, *args)
    finally:
        if not attached:
            root.removeHandler(handler)
        root.setLevel(saved[0])
        absl_logger.setLevel(saved[1])
        command._configure_logs_then = saved[2]
