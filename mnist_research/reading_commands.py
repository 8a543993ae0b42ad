"""What the commands that read runs share (evaluate, report, predict, export,
predict_robustness, compare, runs); ``train`` uses none of it."""

from __future__ import annotations

from collections.abc import Callable

from absl import app, flags

from mnist_research.errors import run_guarded


def main_with_arguments(
    body: Callable[[list[str]], int], missing: str
) -> Callable[[list[str]], int]:
    """``main(argv)`` of a command that takes one or more positional arguments.

    Without any it is a usage error saying ``missing``; otherwise it runs
    ``body(arguments)`` under :func:`~mnist_research.errors.run_guarded`.
    """

    def main(argv: list[str]) -> int:
        if len(argv) < 2:
            raise app.UsageError(missing)
        return run_guarded(lambda: body(argv[1:]))

    return main


def define_json_flag(fv: flags.FlagValues, instead_of: str) -> None:
    """``--json``: print one JSON document instead of ``instead_of`` (predict, runs, compare)."""
    flags.DEFINE_boolean(
        "json", False, f"Print one JSON document instead of {instead_of}.", flag_values=fv
    )


def define_finished_run_flags(
    fv: flags.FlagValues, data: bool = True, checkpoint: bool = True
) -> None:
    """``--run_dir`` (required) and, with ``checkpoint``, ``--from_checkpoint``, with
    ``data``, ``--data_dir``: the flags of the commands that use a finished run."""
    flags.DEFINE_string(
        "run_dir",
        None,
        "A finished run directory, or latest (the newest finished run under --logdir).",
        required=True,
        flag_values=fv,
    )
    if checkpoint:
        flags.DEFINE_boolean(
            "from_checkpoint",
            False,
            "Load the latest checkpoint instead of the SavedModel export.",
            flag_values=fv,
        )
    if data:
        flags.DEFINE_string(
            "data_dir",
            None,
            "Where the data is (default: the run's own --data_dir).",
            flag_values=fv,
        )
