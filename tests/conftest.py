"""Shared fixtures: tiny, learnable MNIST-shaped data written the ways users have it."""

import atexit
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future

import numpy as np
import pytest

from tests.helpers import EARLY, SMOKE, finish, make_digits, selected, start_module, stop

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


def _early_key(item) -> str:
    module = getattr(item, "module", None)
    return f"{getattr(module, '__name__', '')}::{getattr(item, 'originalname', item.name)}"


class _EarlyProcesses:
    """The selected tests' early processes (``tests.helpers.EARLY``), in the session's
    order: a thread starts one, waits for it, starts the next; a test that asks for its
    own before its turn starts it at once."""

    def __init__(self, jobs):
        self._jobs, self._lock = list(jobs), threading.Lock()
        self._started, self._closed = [], False
        self._results = {key: Future() for key, _ in self._jobs}
        self._thread = threading.Thread(target=self._run_all, daemon=True)
        self._thread.start()

    def _take(self, key=None):
        with self._lock:
            for i, job in enumerate(self._jobs):
                if key in (None, job[0]):
                    return self._jobs.pop(i)
        return None

    def _run(self, key, start):
        try:
            folder, started = start()  # a process, or a list of processes run side by side
            processes = started if isinstance(started, list) else [started]
            self._started += processes
            if self._closed:
                for process in processes:
                    stop(process)
            results = [finish(process, timeout=600) for process in processes]
            self._results[key].set_result((folder, results if started is processes else results[0]))
        except BaseException as error:  # the test that waits for it raises it
            self._results[key].set_exception(error)

    def _run_all(self):
        while (job := self._take()) is not None:
            self._run(*job)

    def result(self, key):
        job = self._take(key)
        if job is not None:
            self._run(*job)
        return self._results[key].result()

    def close(self):
        with self._lock:
            self._jobs.clear()
            self._closed = True
        for process in self._started:  # one a failed or deselected test did not wait for
            stop(process)
        self._thread.join()


@pytest.fixture(scope="session", autouse=True)
def _early_processes(tmp_path_factory, request):
    """The early processes of the session's selected tests, from its first test on."""
    keys = dict.fromkeys(_early_key(item) for item in request.session.items)
    keys = [key for key in keys if key in EARLY]
    if not keys:
        yield None
        return
    npz_dir = request.getfixturevalue("npz_dir")
    # The environment as the session starts: a test's monkeypatched variable (TF_CONFIG,
    # CUDA_VISIBLE_DEVICES) must not reach a process the thread starts meanwhile.
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def job(key):  # its folder made here, not in the thread
        folder = tmp_path_factory.mktemp(key.rsplit("::", 1)[1][:30])
        return lambda: (folder, EARLY[key](npz_dir, folder, environ))

    early = _EarlyProcesses((key, job(key)) for key in keys)
    yield early
    early.close()


@pytest.fixture
def early_process(_early_processes, request):
    """This test's early process (``tests.helpers.early``), finished: (its folder, the
    CompletedProcess)."""
    return _early_processes.result(_early_key(request.node))
