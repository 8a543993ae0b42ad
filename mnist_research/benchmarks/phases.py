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
exit. The process start comes from ``MNIST_BENCHMARK_T0`` (``time.time()`` of
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

# The timed hooks of ``runner.standard_hooks`` by class; the others count as between_other.
_HOOK_PHASES = {"TensorBoard": "tensorboard", "Checkpoint": "checkpoint"}
# The end-of-run actions of ``run_outputs.end_of_run_actions`` by name.
_ACTION_PHASES = {"exporting": "export", "writing the reports": "reports"}


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

    def hooks(self, make_hooks):
        """``make_hooks`` with a hook that marks the loop's phases first, each hook timed."""
        self.mark("setup")  # the command has parsed its flags and imported its library
        from mnist_research.training import loop

        timer = self

        class StepTimes(loop.Hook):
            """Marks the epochs' steps, the validation pass and the end of the loop."""

            def __init__(self, steps_per_epoch: int):
                self.steps_per_epoch = steps_per_epoch

            def before_steps(self, step, num_steps):
                if timer.current not in ("first_epoch", "epochs"):
                    timer.mark("epochs" if timer.epochs else "first_epoch")

            def after_steps(self, step, done, chunk, epoch):
                if done == self.steps_per_epoch:
                    timer.epochs += 1
                    timer.mark("validation")

            def after_epoch(self, epoch, history):
                timer.mark("between_other")

            def end(self):
                timer.mark("test_evaluation")

        class Timed(loop.Hook):
            """Another hook, each call timed into its phase."""

            def __init__(self, hook: loop.Hook):
                self.hook = hook
                self.phase = _HOOK_PHASES.get(type(hook).__name__, "between_other")

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

        def timed_hooks(run, steps_per_epoch, verbose):
            made = make_hooks(run, steps_per_epoch, verbose)
            timer.mark("between_other")  # the setup ends where the hooks are made
            return [StepTimes(steps_per_epoch)] + [Timed(hook) for hook in made]

        return timed_hooks

    def actions(self, actions):
        """The end-of-run ``actions``, each timed into its phase; the exit after them."""
        return tuple(
            dataclasses.replace(
                action,
                write=self.timed(_ACTION_PHASES.get(action.name, "exit"), action.write, "exit"),
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
