"""Shared fixtures: tiny, learnable MNIST-shaped data written the ways users have it."""

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

from tests.helpers import SMOKE, make_digits, run_module

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


@pytest.fixture(scope="session")
def finished_run(npz_dir, tmp_path_factory):
    """One finished smoke run on the tiny data, shared by the tests that only read it."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "smoke")
    result = run_module(
        "mnist_research.train",
        "--flagfile=experiments/smoke.flags",
        f"--data_dir={npz_dir}",
        f"--run_dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


@pytest.fixture(scope="session")
def mirrored_run(npz_dir, tmp_path_factory):
    """The smoke run on two logical CPUs (MirroredStrategy), in its own process (the devices
    are split before TensorFlow starts), once a session for the tests that only read it."""
    run_dir = str(tmp_path_factory.mktemp("mirrored") / "smoke-2cpu")
    result = run_module(
        "mnist_research.train",
        SMOKE,
        f"--data_dir={npz_dir}",
        f"--run_dir={run_dir}",
        "--strategy=mirrored",
        "--num_cpu_devices=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result
