"""Resuming a run: the newest unfinished run of an experiment, and the command that resumes it."""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import sys

from mnist_research.config import ExperimentConfig
from mnist_research.config.saved import resume_identity
from mnist_research.errors import MnistResearchError
from mnist_research.rundir import layout, records
from mnist_research.rundir.checkpoint_files import CHECKPOINT_DIR


def _finished_or_damaged(run_dir: str) -> bool:
    """--resume skips both: a damaged run is resumed only when named with --run_dir."""
    try:
        return records.finished_metrics(run_dir) is not None
    except MnistResearchError:
        return True


def latest_unfinished(logdir: str, config: ExperimentConfig) -> str | None:
    """The most recently active unfinished run of ``config``'s experiment under ``logdir``.

    A candidate is a direct sub-directory holding a ``config.json`` with the
    same experiment name and the same model and recipe
    (``config.saved.resume_identity``) that has not finished; the newest is
    the one whose ``config.json``, ``metrics.json`` or checkpoints changed last.

    Returns:
      Its path, or ``None`` when there is none.
    """
    candidates = []
    for path in glob.glob(os.path.join(glob.escape(logdir), "*", layout.CONFIG_FILE)):
        run_dir = os.path.dirname(path)
        try:
            saved = records.load_config(run_dir)
        except MnistResearchError:
            continue  # damaged: resuming it needs an explicit --run_dir
        if (
            saved is None
            or saved.experiment != config.experiment
            or resume_identity(saved) != resume_identity(config)
            or _finished_or_damaged(run_dir)
        ):
            continue
        touched = [
            os.path.getmtime(p)
            for p in (
                path,
                os.path.join(run_dir, layout.METRICS_FILE),
                os.path.join(run_dir, CHECKPOINT_DIR),
            )
            if os.path.exists(p)
        ]
        candidates.append((max(touched), run_dir))
    return max(candidates)[1] if candidates else None


# Flags a resume command leaves out: where the run goes is given by --run_dir, and
# --overwrite would delete the run being resumed.
_NOT_REPEATED = re.compile(r"^--?(no)?(run_dir|overwrite|resume)(=.*)?$")


# Flags whose value is a path: made absolute, so the command works from any folder.
_PATH_FLAG = re.compile(r"^(--?(?:flagfile|data_dir|logdir))(?:=(.+))?$")


def resume_command(run_dir: str, argv: list[str]) -> str:
    """The shell command that resumes ``run_dir``: ``argv`` as typed, with ``--run_dir``.

    Args:
      run_dir: the run directory to resume.
      argv: the command line that started it (``sys.argv``: the program, then
        its arguments).

    Returns:
      E.g. ``/work/.venv/bin/python -m mnist_research.train
      --flagfile=/work/experiments/baseline.flags
      --run_dir=/work/runs/baseline-cpu-20261125-140000``, quoted for a POSIX
      shell: the running interpreter (a bare ``python`` may be another one
      once the venv is not activated) and absolute paths for ``--flagfile``,
      ``--data_dir``, ``--logdir`` and ``--run_dir``, so it works from any folder.
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
    """How to start the running command again: ``python -m <module>`` or its script."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        module = spec.name[: -len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        return [shlex.quote(sys.executable or "python"), "-m", module]
    name = os.path.basename(argv0)
    return [name if _on_path_as(name, argv0) else shlex.quote(argv0 or "python")]


def _on_path_as(name: str, path: str) -> bool:
    found = shutil.which(name)
    return bool(found and path and os.path.realpath(found) == os.path.realpath(path))
