"""Injected faults: SIGKILL mid-checkpoint and mid-report, a full disk, bad data at the
entry point's error boundary (one line, exit status 1, run dir untouched)."""

import glob
import hashlib
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from mnist_research import config as config_lib
from mnist_research.errors import run_guarded
from mnist_research.rundir import layout
from mnist_research.training import runner as train_lib
from tests.helpers import (
    TESTS,
    early,
    make_digits,
    run_main,
    run_module,
    scalars,
    start,
    tmpfs,
    write_idx_dir,
)


def train_args(npz_dir, run_dir, *extra):
    return [
        "--flagfile=experiments/smoke.flags",
        f"--data_dir={npz_dir}",
        f"--run_dir={run_dir}",
        "--histograms=false",
        # The plain step: the resumes and reruns run in this process, where an XLA compile
        # misses the session's cache (the traced function names differ from a fresh one's).
        "--nojit_compile",
        *extra,
    ]


def start_with_fault(environ, fault, *args):
    return start(
        [sys.executable, os.path.join(TESTS, "fault_runner.py"), fault, *args], env=environ
    )


def assert_clean_history(run_dir, epochs):
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["finished"] and metrics["epochs_completed"] == epochs
    assert all(len(v) == epochs for v in metrics["history"].values())
    validation = scalars(os.path.join(run_dir, "validation"))
    assert [s for s, _ in validation["epoch/accuracy"]] == list(range(1, epochs + 1))
    steps = [s for s, _ in scalars(os.path.join(run_dir, "train"))["step/loss"]]
    assert steps == sorted(set(steps)), steps  # never backwards, never repeated
    assert not glob.glob(os.path.join(run_dir, "**", ".tmp-*"), recursive=True)
    return metrics


@early
def early_test_sigkill_mid_checkpoint_then_resume(npz_dir, folder, environ):
    args = train_args(npz_dir, folder / "run", "--epochs=3")
    return start_with_fault(environ, "kill_before_commit:2", *args)


@pytest.mark.slow
def test_sigkill_mid_checkpoint_then_resume(npz_dir, early_process):
    folder, killed = early_process
    run_dir = str(folder / "run")
    assert killed.returncode == -9, killed.stderr[-2000:]
    checkpoints = os.path.join(run_dir, "checkpoints")
    assert os.path.exists(os.path.join(checkpoints, "ckpt-2.index"))  # written...
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-1")  # ...not committed
    # The resume needs no process of its own.
    resumed = run_main("mnist_research.train", *train_args(npz_dir, run_dir, "--epochs=3"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "ckpt-1" in resumed.stderr and "epoch 2/3" in resumed.stderr
    assert "epoch 1/3" not in resumed.stderr
    assert_clean_history(run_dir, 3)
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-3")


@early
def early_test_sigkill_while_writing_reports_then_rerun(npz_dir, folder, environ):
    return start_with_fault(environ, "kill_in_reports", *train_args(npz_dir, folder / "run"))


@pytest.mark.slow
def test_sigkill_while_writing_reports_then_rerun(npz_dir, early_process):
    folder, killed = early_process
    run_dir = str(folder / "run")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not json.load(open(os.path.join(run_dir, "metrics.json")))["finished"]
    rerun = run_main("mnist_research.train", *train_args(npz_dir, run_dir))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"Restored {run_dir}" in rerun.stderr, rerun.stderr[-2000:]  # its INFO lines are here
    assert "epoch 1/2" not in rerun.stderr and "epoch 2/2" not in rerun.stderr  # no retraining
    assert_clean_history(run_dir, 2)
    for name in ("curves", "samples", "confusion_matrix", "per_class", "mistakes"):
        assert os.path.getsize(os.path.join(run_dir, "reports", f"{name}.png")) > 1000
    assert os.path.exists(os.path.join(run_dir, "export", "saved_model.pb"))


@pytest.fixture
def small_disk(tmp_path):
    """A 5 MB tmpfs: room for the first checkpoint (3.9 MB: the model, its Adam slots and
    the best epoch's weights) and the small files, not a second."""
    with tmpfs(tmp_path, "5m") as mount:
        yield mount


@pytest.mark.slow
def test_disk_full_keeps_the_last_good_checkpoint(npz_dir, small_disk):
    run_dir = str(small_disk / "run")
    # A process of its own: in the pytest process the graph written to the train events
    # holds every function the session traced (1.2 MB after one earlier test), and the
    # first checkpoint no longer fits.
    result = run_module("mnist_research.train", *train_args(npz_dir, run_dir, "--epochs=3"))
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "could not save the checkpoint of epoch 2" in last
    assert "still ckpt-1" in last and "Traceback" not in result.stderr
    checkpoints = os.path.join(run_dir, "checkpoints")
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-1")
    assert not glob.glob(os.path.join(checkpoints, "ckpt-2*"))  # partial save removed
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["epochs_completed"] == 1 and not metrics["finished"]


def _write_npz(folder, **overrides):
    x, y = make_digits(60)
    arrays = {"x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20], **overrides}
    np.savez(os.path.join(folder, "mnist.npz"), **arrays)


def _object_npz(folder):
    evil = np.empty(1, dtype=object)
    np.savez(
        os.path.join(folder, "mnist.npz"), x_train=evil, y_train=evil, x_test=evil, y_test=evil
    )


def _idx(folder, mutate):
    x, y = make_digits(60)
    write_idx_dir(
        folder, {"x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]}, gz=mutate == "gz"
    )
    name = "train-labels-idx1-ubyte"
    path = os.path.join(folder, name)
    if mutate == "magic":
        payload = open(path, "rb").read()
        open(path, "wb").write(b"\x00\x00\x0d\x01" + payload[4:])
    elif mutate == "truncated":
        payload = open(path, "rb").read()
        open(path, "wb").write(payload[:-5])
    elif mutate == "missing":
        os.remove(path)
    elif mutate == "gz":
        path += ".gz"
        payload = open(path, "rb").read()
        open(path, "wb").write(payload[: len(payload) // 2])


def _crafted_npz(folder, member="x_train.npy", payload=None, patch=None):
    """A Keras-layout .npz written with zipfile, with one member replaced or patched.

    ``patch(raw, offsets)`` edits the archive bytes; ``offsets`` are the member's local
    header and central-directory entry.
    """
    import io
    import zipfile

    x, y = make_digits(60)
    arrays = {"x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]}
    path = os.path.join(folder, "mnist.npz")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            name = f"{key}.npy"
            if name == member and payload is not None:
                archive.writestr(
                    name.replace(".npy", "") if payload == b"raw" else name,
                    b"raw bytes, not an array" if payload == b"raw" else payload,
                )
            else:
                archive.writestr(name, buffer.getvalue())
    if patch:
        raw = bytearray(open(path, "rb").read())
        name = member.encode()
        local = raw.index(name) - 30  # the name follows the 30-byte local header
        central = raw.index(b"PK\x01\x02")
        while raw[central + 46 : central + 46 + len(name)] != name:
            central = raw.index(b"PK\x01\x02", central + 4)
        patch(raw, local, central)
        open(path, "wb").write(bytes(raw))


def _encrypted(raw, local, central):
    raw[local + 6] |= 0x01  # general-purpose flag bit 0: encrypted
    raw[central + 8] |= 0x01


def _deflate64(raw, local, central):
    raw[local + 8], raw[central + 10] = 9, 9  # compression method 9: not in zipfile


def _bad_crc(raw, local, central):
    raw[local + 30 + len(b"x_train.npy") + 200] ^= 0xFF  # one byte of the array data


def _npy_header(shape, dtype="|u1"):
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (118 - len(header)) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _idx_overflow(folder):
    """Four dimensions of 65536: their product, 2**64, wraps an int64 to 0 == the data size."""
    x, y = make_digits(60)
    write_idx_dir(
        folder, {"x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]}, gz=False
    )
    path = os.path.join(folder, "train-images-idx3-ubyte")
    open(path, "wb").write(bytes([0, 0, 8, 4]) + (65536).to_bytes(4, "big") * 4)


BAD_DATA = {
    "missing dir": (None, "does not exist"),
    "empty dir": (lambda d: None, "found neither mnist.npz nor the four IDX files"),
    "truncated npz": (
        lambda d: open(os.path.join(d, "mnist.npz"), "wb").write(b"PK\x03\x04zz"),
        "not an .npz",
    ),
    "object arrays": (_object_npz, "refusing to unpickle"),
    "wrong shape": (
        lambda d: _write_npz(d, x_train=np.zeros((60, 32, 32), np.uint8)),
        "expected (N, 28, 28)",
    ),
    "wrong dtype": (
        lambda d: _write_npz(d, x_train=np.zeros((60, 28, 28), np.int32)),
        "expected uint8",
    ),
    "float with NaN": (
        lambda d: _write_npz(d, x_train=np.full((60, 28, 28), np.nan, np.float32)),
        "expected uint8",
    ),
    "count mismatch": (
        lambda d: _write_npz(d, y_train=np.zeros(59, np.uint8)),
        "60 train images but 59 train labels",
    ),
    "label out of range": (
        lambda d: _write_npz(d, y_test=np.full(20, 11, np.uint8)),
        "expected 0-9",
    ),
    "IDX wrong magic": (lambda d: _idx(d, "magic"), "wrong IDX magic"),
    "IDX truncated": (lambda d: _idx(d, "truncated"), "truncated or corrupt"),
    "IDX file missing": (lambda d: _idx(d, "missing"), "missing: train-labels-idx1-ubyte"),
    "corrupt gzip": (lambda d: _idx(d, "gz"), "train-labels-idx1-ubyte.gz"),
    "npz member not .npy": (
        lambda d: _crafted_npz(d, payload=b"PK not an array"),
        "member x_train.npy: not a .npy array",
    ),
    "npz member raw bytes": (
        lambda d: _crafted_npz(d, payload=b"raw"),
        "member x_train: not a .npy array",
    ),
    "npz member encrypted": (lambda d: _crafted_npz(d, patch=_encrypted), "encrypted"),
    "npz member deflate64": (
        lambda d: _crafted_npz(d, patch=_deflate64),
        "compression method is not supported",
    ),
    "npz member bad CRC": (lambda d: _crafted_npz(d, patch=_bad_crc), "Bad CRC-32"),
    "npy header 7 PiB": (
        lambda d: _crafted_npz(d, payload=_npy_header((2**40, 2**13))),
        "more than the 2,147,483,648 this loader accepts",
    ),
    "npy header larger than data": (
        lambda d: _crafted_npz(d, payload=_npy_header((61, 28, 28)) + bytes(60 * 784)),
        "(47,824 bytes) but the member holds 47,040; truncated or corrupt",
    ),
    "npy header object dtype": (
        lambda d: _crafted_npz(d, payload=_npy_header((2,), "|O")),
        "refusing to unpickle",
    ),
    "IDX dims overflow int64": (_idx_overflow, "more than the 2,147,483,648"),
}


def _tree_digest(folder):
    digest = {}
    for path in sorted(glob.glob(os.path.join(folder, "**"), recursive=True)):
        if os.path.isfile(path):
            digest[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return digest


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_is_one_line_and_touches_nothing(case, tmp_path, capsys):
    make, message = BAD_DATA[case]
    data_dir = tmp_path / "data"
    if make is not None:
        data_dir.mkdir()
        make(str(data_dir))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # An earlier run of this project (its marker), whose files bad data must leave untouched.
    (run_dir / layout.MARKER_FILE).write_text("an earlier run\n")
    (run_dir / "metrics.json").write_text('{"finished": false, "note": "from an earlier run"}')
    before = _tree_digest(run_dir)
    config = config_lib.ExperimentConfig(
        data=config_lib.DataConfig(data_dir=str(data_dir)),
        train=config_lib.TrainConfig(epochs=1, batch_size=16),
    )
    status = run_guarded(
        lambda: train_lib.train_and_evaluate(
            config, str(run_dir), strategy=tf.distribute.get_strategy(), verbose=False
        )
    )
    assert status == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, lines
    assert message in lines[0] and str(data_dir) in lines[0]
    assert _tree_digest(run_dir) == before
