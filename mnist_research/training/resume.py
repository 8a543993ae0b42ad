"""The command that resumes a run (``--resume`` finds one: ``existing_run.latest_unfinished``)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys

from mnist_research.rundir import layout

# Flags a resume command leaves out: where the run goes is given by --run_dir, and
# --overwrite would delete the run being resumed.
_NOT_REPEATED = re.compile(r"^--?(no)?(run_dir|overwrite|resume)(=.*)?$")
# Flags whose value is a path: made absolute, so the command works from any folder.
_PATH_FLAG = re.compile(r"^(--?(?:flagfile|data_dir|logdir))(?:=(.+))?$")


def resume_command(run_dir: str, argv: list[str]) -> str:
    """The shell command that resumes ``run_dir``: ``argv`` (``sys.argv``) as typed, with
    ``--run_dir``, quoted for a POSIX shell.

    It starts the running interpreter (a bare ``python`` may be another one once
    the venv is not activated), and ``--flagfile``, ``--data_dir``, ``--logdir``
    and ``--run_dir`` are absolute paths, so it works from any folder.
    """
    args, rest = [], iter(argv[1:])
    for arg in rest:
        left_out, path = _NOT_REPEATED.match(arg), _PATH_FLAG.match(arg)
        if left_out:
            if left_out.group(2) == "run_dir" and left_out.group(3) is None:
                next(rest, None)  # "--run_dir DIR": its value goes too
        elif path and path.group(2):
            args.append(f"{path.group(1)}={os.path.abspath(path.group(2))}")
        else:
            args.append(arg)
            if path:  # "--data_dir DIR": the value follows
                value = next(rest, None)
                if value is not None:
                    args.append(os.path.abspath(value))
    return " ".join(
        _program(argv[0] if argv else "")
        + [shlex.quote(a) for a in args + [f"--run_dir={os.path.abspath(run_dir)}"]]
    )


def _program(argv0: str) -> list[str]:
    """How to start the running command again: ``python -m <module>``, or its script (by
    name alone when that name on the PATH is this script)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return [shlex.quote(sys.executable or "python"), "-m", spec.name.removesuffix(".__main__")]
    name = os.path.basename(argv0)
    found = shutil.which(name)
    if found and argv0 and os.path.realpath(found) == os.path.realpath(argv0):
        return [name]
    return [shlex.quote(argv0 or "python")]


def stop_line(signal_name: str, run_dir: str | None, argv: list[str]) -> str:
    """The line a stopped run ends with: the checkpoint kept, and the command that resumes.

    Everything it reads is imported with this module: the signal watch thread
    calls it and must never wait on an import.
    """
    latest = None
    if run_dir:
        folder = os.path.join(run_dir, layout.CHECKPOINT_DIR)
        latest = layout.read_state(folder)[0] or max(layout.numbers_on_disk(folder), default=None)
    kept = (
        f"the checkpoint of epoch {latest} is kept"
        if latest
        else "no epoch had finished, so there is no checkpoint yet"
    )
    again = resume_command(run_dir, argv) if run_dir else "the same command"
    return f"{signal_name}: stopped; {kept}. Resume with: {again}"
