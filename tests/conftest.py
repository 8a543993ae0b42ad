"""Shared fixtures: tiny, learnable MNIST-shaped data written the ways users have it."""

import gzip
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_MNIST = os.path.join(REPO, "..", "shared", "datasets", "mnist")


def make_digits(num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [num, 28, 28] whose class is a bright 6x6 patch's position, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(num, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 5)
        r, c = 3 + row * 12, 1 + col * 5
        images[i, r:r + 6, c:c + 5] = 255
    return images, labels.astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


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


def write_idx_dir(folder, arrays, gz: bool) -> str:
    from mnist_research.data.sources import IDX_NAMES
    for key, stem in IDX_NAMES.items():
        payload = idx_bytes(arrays[key])
        if gz:
            with gzip.open(os.path.join(folder, stem + ".gz"), "wb") as f:
                f.write(payload)
        else:
            with open(os.path.join(folder, stem), "wb") as f:
                f.write(payload)
    return str(folder)


def run_module(module: str, *args: str, env=None, timeout: int = 300, cwd=REPO):
    """Runs ``python -m module args`` and returns the CompletedProcess."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def finished_run(npz_dir, tmp_path_factory):
    """One finished smoke run on the tiny data, shared by the tests that only read it."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "smoke")
    result = run_module("mnist_research.train", "--flagfile=experiments/smoke.flags",
                        f"--data_dir={npz_dir}", f"--run_dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def find_chromium():
    import shutil
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None
