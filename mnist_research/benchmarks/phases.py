"""Where a ``train`` command's time goes: the real command with timers around its phases.

Run as ``python -m mnist_research.benchmarks.phases OUTPUT.json TRAIN_FLAGS...``
(the benchmark does, in a subprocess). It runs ``mnist_research.train`` with a
:class:`PhaseTimer` as its instrument: the timer adds a hook to the epoch loop
and wraps the run's other hooks and end-of-run actions (the command's public
seam, ``train.run(instrument=...)``), then writes the seconds spent in each
phase: start-up (process start to the run's setup, imports included), the
setup (data, trainer, restoring), the first epoch's steps (XLA compilation
included), the other epochs' steps, and between epochs the validation pass,
TensorBoard (scalars and histograms), the checkpoint and the rest; then the
test evaluation (with the best epoch's checkpoint), export and reports, and the
exit (``metrics.json``, the command's last lines, the interpreter's exit). The
epochs' phases are the calls of the compiled steps; the hooks' work between
them (step scalars, the progress bar) counts as ``tensorboard`` or
``between_other``. The process start comes from ``MNIST_BENCHMARK_T0`` (``time.time()`` of
the parent just before it started this process) or, without it, from
``/proc/self/stat``.
"""

from __future__ import annotations

import time

_IMPORTED = time.time()

import atexit  # noqa: E402
import collections  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

PHASES = (
    "startup",
    "setup",
    "first_epoch",
    "epochs",
    "validation",
    "tensorboard",
    "checkpoint",
    "between_other",
    "test_evaluation",
    "export",
    "reports",
    "exit",
)


def process_start() -> float:
    """``time.time()`` when this process started."""
    if "MNIST_BENCHMARK_T0" in os.environ:
        return float(os.environ["MNIST_BENCHMARK_T0"])
    with open("/proc/self/stat") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


class PhaseTimer:
    """A timeline of phases: each mark ends the phase before it.

    The command runs one thing at a time, so the phases never overlap and add
    up to the whole command. As the ``train`` command's instrument it makes the
    epoch loop's hooks and the end-of-run actions mark their phases.
    """

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.cpu_seconds = collections.defaultdict(float)
        self.first_start: dict[str, float] = {}
        self.current: str | None = None
        self.started = self.cpu_started = 0.0
        self.epochs = 0

    def mark(self, name: str) -> None:
        """Phase ``name`` starts now."""
        now, cpu = time.time(), time.process_time()
        if self.current is not None:
            self.seconds[self.current] += now - self.started
            self.cpu_seconds[self.current] += cpu - self.cpu_started
        self.first_start.setdefault(name, now)
        self.current, self.started, self.cpu_started = name, now, cpu

    def timed(self, name: str, fn, then: str | None = None):
        """``fn`` timed into phase ``name``; then phase ``then``, or the one it interrupted."""

        @functools.wraps(fn)
        def call(*args, **kwargs):
            after = then or self.current
            self.mark(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self.mark(after)

        return call

    def hooks(self, standard):
        """The run's ``standard`` hooks, each timed into its phase, after one that marks the loop.

        Called by the run once its setup is done (data, trainer, restoring).
        """
        from mnist_research.training import hooks, loop

        timer = self

        class LoopPhases(loop.Hook):
            """Marks the epochs' steps and, after each call of them, what follows."""

            def before_steps(self, step, num_steps):
                timer.mark("epochs" if timer.epochs else "first_epoch")

            def after_steps(self, step, done, chunk, epoch_totals):
                timer.mark("validation")  # until the next call, or the epoch's end

            def after_epoch(self, epoch, history):
                timer.epochs += 1
                timer.mark("between_other")

            def end(self):
                timer.mark("test_evaluation")

        class Timed(loop.Hook):
            """Another hook, each call timed into its phase."""

            def __init__(self, hook: loop.Hook):
                self.hook = hook
                self.phase = (
                    "tensorboard"
                    if isinstance(hook, hooks.TensorBoard)
                    else "checkpoint"
                    if isinstance(hook, hooks.Checkpoint)
                    else "between_other"
                )

            def before_steps(self, *args):
                timer.timed(self.phase, self.hook.before_steps)(*args)

            def after_steps(self, *args):
                timer.timed(self.phase, self.hook.after_steps)(*args)

            def after_epoch(self, *args):
                timer.timed(self.phase, self.hook.after_epoch)(*args)

            def should_stop(self, history):
                return timer.timed(self.phase, self.hook.should_stop)(history)

            def end(self):
                timer.timed(self.phase, self.hook.end)()

        timer.mark("between_other")  # the setup ends where the hooks are made
        return [LoopPhases()] + [Timed(hook) for hook in standard]

    def actions(self, actions):
        """The end-of-run ``actions``, each timed into its phase; the exit after them.

        Called by the command once its flags are parsed and its library
        imported, just before the run starts: the setup starts here.
        """
        from mnist_research import run_outputs

        self.mark("setup")
        phases = {run_outputs.export_model: "export", run_outputs.write_reports: "reports"}
        return tuple(
            dataclasses.replace(
                action,
                write=self.timed(phases.get(action.write, "exit"), action.write, "exit"),
            )
            for action in actions
        )


def report(timer: PhaseTimer, t0: float, exit_time: float) -> dict:
    """Seconds per phase (summing to the whole command) and the raw timer figures."""
    if timer.current is not None:  # the exit: metrics.json, the command's last lines
        timer.seconds[timer.current] += exit_time - timer.started
    phases = {name: timer.seconds[name] for name in PHASES}
    phases["startup"] = timer.first_start.get("setup", exit_time) - t0
    whole = exit_time - t0
    outside = whole - phases["first_epoch"] - phases["epochs"]
    return {
        "phases": phases,
        "whole_seconds": whole,
        "outside_epochs_seconds": outside,
        "outside_epochs_fraction": outside / whole,
        "epochs_trained": timer.epochs,
        "imported_at": _IMPORTED - t0,
        "cpu_seconds": {**dict(timer.cpu_seconds), "process": time.process_time()},
    }


def main() -> None:
    output, sys.argv = sys.argv[1], ["mnist_research.train", *sys.argv[2:]]
    t0 = process_start()
    timer = PhaseTimer()

    def write():  # At exit: the command's own exit path (sys.exit) runs first.
        with open(output, "w") as f:
            json.dump(report(timer, t0, time.time()), f, indent=2)

    atexit.register(write)
    from mnist_research import train

    train.run(instrument=timer)


if __name__ == "__main__":
    main()
