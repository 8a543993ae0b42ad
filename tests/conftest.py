"""Shared fixtures: tiny, learnable MNIST-shaped data written the ways users have it."""

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

from tests.helpers import SMOKE, finish, make_digits, selected, start_module, stop

# TensorFlow is first imported after this module runs (nothing above imports it), so the
# variables below reach it and every command the tests start.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# One XLA compilation cache for the whole session, in this process and every command it
# starts: the same train step compiles once, not once per run (~3 s of each tiny run on
# 2 cores). The compiled programs are the ones XLA would build again, so every result is
# the same; the folder is this session's own and goes with it.
_XLA_CACHE = tempfile.mkdtemp(prefix="mnist_research-tests-xla-")
atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
os.environ["TF_XLA_FLAGS"] = " ".join(
    filter(
        None, [os.environ.get("TF_XLA_FLAGS"), f"--tf_xla_persistent_cache_directory={_XLA_CACHE}"]
    )
)


@pytest.fixture(scope="session")
def tiny_arrays():
    x_train, y_train = make_digits(640, seed=1)
    x_test, y_test = make_digits(200, seed=2)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture(scope="session")
def npz_dir(tmp_path_factory, tiny_arrays):
    folder = tmp_path_factory.mktemp("npz")
    np.savez(folder / "mnist.npz", **tiny_arrays)
    return str(folder)


# The shared smoke runs: where each is written (as tmp_path_factory names its folders), its flags.
_SMOKE_RUNS = {
    "finished_run": ("runs", "smoke", ("--flagfile=experiments/smoke.flags",)),
    # Two logical CPUs (MirroredStrategy): the devices are split before TensorFlow starts.
    "mirrored_run": (
        "mirrored",
        "smoke-2cpu",
        (SMOKE, "--strategy=mirrored", "--num_cpu_devices=2"),
    ),
}


@pytest.fixture(scope="session")
def _smoke_runs(npz_dir, tmp_path_factory, request):
    """The shared smoke runs' processes, started side by side as the first is asked for
    (each works mostly on one core; two keep the 2 cores busy), each only if a selected
    test reads it; ``start`` starts one a test asks for that was not foreseen."""
    started = {}

    def start(name):
        parent, leaf, flags = _SMOKE_RUNS[name]
        run_dir = str(tmp_path_factory.mktemp(parent) / leaf)
        process = start_module(
            "mnist_research.train", *flags, f"--data_dir={npz_dir}", f"--run_dir={run_dir}"
        )
        started[name] = run_dir, process

    for name in _SMOKE_RUNS:
        if selected(request, name):
            start(name)
    yield started, start
    for _, process in started.values():  # one a failed or deselected test did not wait for
        stop(process)


def _finished(smoke_runs, name):
    started, start = smoke_runs
    if name not in started:
        start(name)
    run_dir, process = started[name]
    result = finish(process, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


@pytest.fixture(scope="session")
def finished_run(_smoke_runs):
    """One finished smoke run on the tiny data, shared by the tests that only read it."""
    return _finished(_smoke_runs, "finished_run")


@pytest.fixture(scope="session")
def mirrored_run(_smoke_runs):
    """The smoke run on two logical CPUs (MirroredStrategy), in its own process, once a
    session for the tests that only read it."""
    return _finished(_smoke_runs, "mirrored_run")
