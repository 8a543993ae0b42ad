"""Where a ``train`` command's time goes: the real command with timers around its phases.

Run as ``python -m mnist_research.benchmarks.phases OUTPUT.json TRAIN_FLAGS...``
(the benchmark does, in a subprocess). It runs ``mnist_research.train`` with
every phase function wrapped in a timer and writes the seconds spent in each:
start-up (process start to the training code, imports included), data
loading, setting up the trainer, the first epoch (XLA compilation included),
the other epochs, and between epochs the validation pass, histograms,
checkpoint and the rest (scalars, ``metrics.json``, the log line); then the
test evaluation, export and reports, and the exit. The process start comes
from ``MNIST_BENCHMARK_T0`` (``time.time()`` of the parent just before it
started this process) or, without it, from ``/proc/self/stat``.
"""

from __future__ import annotations

import time

_IMPORTED = time.time()

import atexit  # noqa: E402
import collections  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

PHASES = (
    "startup",
    "data",
    "setup",
    "first_epoch",
    "epochs",
    "validation",
    "histograms",
    "checkpoint",
    "between_other",
    "test_evaluation",
    "export",
    "reports",
    "finish_other",
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
    """Adds wall seconds per phase; records the first and last moment of each."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.cpu_seconds = collections.defaultdict(float)
        self.calls = collections.defaultdict(int)
        self.first_start: dict[str, float] = {}
        self.last_end: dict[str, float] = {}

    def wrap(self, phase, fn):
        """``fn`` timed into ``phase``: a name, or a function of the call counts giving one."""

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            name = phase(self.calls) if callable(phase) else phase
            start, cpu = time.time(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.time()
                self.seconds[name] += end - start
                self.cpu_seconds[name] += time.process_time() - cpu
                self.calls[name] += 1
                self.first_start.setdefault(name, start)
                self.last_end[name] = end

        return timed


def instrument(timer: PhaseTimer) -> None:
    """Wraps the phase functions of the training lifecycle in ``timer``."""
    from mnist_research import run_outputs
    from mnist_research.training import (
        checkpoint_state,
        epoch_loop,
        finish,
        runner,
        summaries,
        trainer,
    )

    runner._load_data = timer.wrap("data", runner._load_data)
    runner._start_run = timer.wrap("setup", runner._start_run)
    runner.epoch_loop.run_epochs = timer.wrap("run_epochs", epoch_loop.run_epochs)
    epoch_loop.train_epoch = timer.wrap(
        lambda calls: "epochs" if calls["first_epoch"] else "first_epoch", epoch_loop.train_epoch
    )
    checkpoint_state.CheckpointState.save = timer.wrap(
        "checkpoint", checkpoint_state.CheckpointState.save
    )
    summaries.Summaries.histograms = timer.wrap("histograms_write", summaries.Summaries.histograms)
    run_outputs.export_model = timer.wrap("export", run_outputs.export_model)
    run_outputs.write_reports = timer.wrap("reports", run_outputs.write_reports)

    def timed_factory(factory, phase):
        def make(self, *args, **kwargs):
            return timer.wrap(phase, factory(self, *args, **kwargs))

        return make

    trainer.Trainer.make_evaluator = timed_factory(
        trainer.Trainer.make_evaluator,
        lambda calls: "test_evaluation" if calls["finish_started"] else "validation",
    )
    trainer.Trainer.make_gradient_fn = timed_factory(
        trainer.Trainer.make_gradient_fn, "histograms_gradients"
    )
    original_finish = finish.finish_run

    def finish_run(run, actions=()):
        timer.calls["finish_started"] += 1
        return original_finish(run, actions)

    runner.finish.finish_run = timer.wrap("finish", finish_run)


def report(timer: PhaseTimer, t0: float, exit_time: float) -> dict:
    """Seconds per phase (summing to the whole command) and the raw timer figures."""
    s = timer.seconds
    epochs_start = timer.first_start.get("run_epochs", exit_time)
    phases = {
        "startup": timer.first_start.get("data", epochs_start) - t0,
        "data": s["data"],
        "setup": s["setup"],
        "first_epoch": s["first_epoch"],
        "epochs": s["epochs"],
        "validation": s["validation"],
        "histograms": s["histograms_write"] + s["histograms_gradients"],
        "checkpoint": s["checkpoint"],
        "test_evaluation": s["test_evaluation"],
        "export": s["export"],
        "reports": s["reports"],
    }
    phases["between_other"] = s["run_epochs"] - sum(
        phases[k] for k in ("first_epoch", "epochs", "validation", "histograms", "checkpoint")
    )
    phases["finish_other"] = s["finish"] - sum(
        phases[k] for k in ("test_evaluation", "export", "reports")
    )
    accounted = sum(phases.values())
    phases["exit"] = exit_time - t0 - accounted  # Between the phases, and interpreter exit.
    whole = exit_time - t0
    outside = whole - phases["first_epoch"] - phases["epochs"]
    return {
        "phases": {k: phases[k] for k in PHASES},
        "whole_seconds": whole,
        "outside_epochs_seconds": outside,
        "outside_epochs_fraction": outside / whole,
        "epochs_trained": timer.calls["first_epoch"] + timer.calls["epochs"],
        "imported_at": _IMPORTED - t0,
        "cpu_seconds": {**dict(timer.cpu_seconds), "process": time.process_time()},
    }


def main() -> None:
    output, sys.argv = sys.argv[1], ["mnist_research.train", *sys.argv[2:]]
    t0 = process_start()
    timer = PhaseTimer()
    instrument(timer)

    def write():  # At exit: the command's own exit path (sys.exit) runs first.
        with open(output, "w") as f:
            json.dump(report(timer, t0, time.time()), f, indent=2)

    atexit.register(write)
    from mnist_research import train

    train.run()


if __name__ == "__main__":
    main()
