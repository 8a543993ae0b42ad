"""Loading (npz, IDX raw and gz), validation, splitting, preprocessing."""

import logging
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_research import config as config_lib
from mnist_research.config import DataConfig
from mnist_research.data import idx
from mnist_research.data import pipeline as input_pipeline
from mnist_research.data import sources as data
from mnist_research.errors import DataError
from tests.helpers import REAL_MNIST, write_idx_dir


def test_npz_dir_loads(npz_dir, tiny_arrays):
    raw = data.load(DataConfig(data_dir=npz_dir))
    np.testing.assert_array_equal(raw.x_train, tiny_arrays["x_train"])
    np.testing.assert_array_equal(raw.y_test, tiny_arrays["y_test"])
    assert raw.source.endswith("mnist.npz")


def test_npz_path_loads(npz_dir):
    raw = data.load(DataConfig(data_dir=os.path.join(npz_dir, "mnist.npz")))
    assert raw.x_train.shape == (640, 28, 28)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dir_loads(tmp_path, tiny_arrays, gz):
    folder = write_idx_dir(tmp_path, tiny_arrays, gz=gz)
    raw = data.load(DataConfig(data_dir=folder))
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(raw, key), tiny_arrays[key])


@pytest.mark.parametrize("name", sorted(config_lib.DATASETS))
def test_every_registered_dataset_reads_its_idx_files_through_the_same_code(
    tmp_path, tiny_arrays, name
):
    entry = config_lib.DATASETS[name]
    folder = write_idx_dir(tmp_path, tiny_arrays, gz=True, names=entry.idx_files)
    raw = data.load(DataConfig(dataset=name, data_dir=folder))
    assert raw.x_test.shape == (200, 28, 28)
    assert len(entry.class_names) == 10


@pytest.mark.parametrize("gz", [True, False])
def test_emnist_digits_images_come_out_transposed_back(tmp_path, tiny_arrays, gz):
    stored = {k: v.transpose(0, 2, 1) if k[0] == "x" else v for k, v in tiny_arrays.items()}
    assert not np.array_equal(stored["x_train"], tiny_arrays["x_train"])
    names = config_lib.DATASETS["emnist_digits"].idx_files
    assert names["x_test"] == "emnist-digits-test-images-idx3-ubyte"
    folder = write_idx_dir(tmp_path, stored, gz=gz, names=names)
    raw = data.load(DataConfig(dataset="emnist_digits", data_dir=folder))
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(raw, key), tiny_arrays[key])
    assert raw.source == folder


def test_a_dataset_without_a_downloader_needs_data_dir_in_one_line():
    offline = [n for n, entry in config_lib.DATASETS.items() if entry.keras_name is None]
    assert offline  # kmnist: Keras has no downloader for it
    with pytest.raises(
        ValueError, match=f"--dataset={offline[0]} has no downloader: pass --data_dir=DIR"
    ):
        DataConfig(dataset=offline[0])


def _npz(tmp_path, **overrides):
    from tests.helpers import make_digits

    x, y = make_digits(50)
    arrays = {"x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20], **overrides}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(tmp_path / "mnist.npz", **arrays)
    return str(tmp_path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"x_train": np.zeros((50, 28, 28), np.float32)}, "dtype float32, expected uint8"),
        ({"x_train": np.zeros((50, 32, 32), np.uint8)}, "expected (N, 28, 28)"),
        ({"y_train": np.full(50, 10, np.uint8)}, "expected 0-9"),
        ({"y_train": np.zeros(49, np.uint8)}, "50 train images but 49 train labels"),
        ({"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.uint8)}, "empty"),
        ({"y_test": None}, "missing array(s) y_test"),
    ],
)
def test_invalid_npz_contents_are_rejected(tmp_path, overrides, message):
    folder = _npz(tmp_path, **overrides)
    with pytest.raises(DataError, match="mnist.npz") as info:
        data.load(DataConfig(data_dir=folder))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    x = np.empty(1, dtype=object)
    x[0] = Evil()
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=x, x_test=x, y_test=x)
    with pytest.raises(DataError, match="refusing to unpickle"):
        data.load(DataConfig(data_dir=str(tmp_path)))
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "not an .npz"),
        (b"PK\x03\x04 truncated zip", "not an .npz"),
        (b"\x93NUMPY plain npy", "not an .npz"),
    ],
)
def test_corrupt_npz_is_rejected(tmp_path, payload, message):
    (tmp_path / "mnist.npz").write_bytes(payload)
    with pytest.raises(DataError, match=message):
        data.load(DataConfig(data_dir=str(tmp_path)))


def test_truncated_npz_is_rejected(tmp_path, npz_dir):
    whole = open(os.path.join(npz_dir, "mnist.npz"), "rb").read()
    (tmp_path / "mnist.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="mnist.npz"):
        data.load(DataConfig(data_dir=str(tmp_path)))


def test_idx_errors(tmp_path, tiny_arrays):
    folder = write_idx_dir(tmp_path, tiny_arrays, gz=False)
    path = os.path.join(folder, "train-labels-idx1-ubyte")
    payload = open(path, "rb").read()
    open(path, "wb").write(payload[:-3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load(DataConfig(data_dir=folder))
    open(path, "wb").write(b"\x00\x00\x0d\x01" + payload[4:])
    with pytest.raises(DataError, match="wrong IDX magic"):
        data.load(DataConfig(data_dir=folder))
    os.remove(path)
    with pytest.raises(DataError, match="IDX file.s. missing: train-labels-idx1-ubyte"):
        data.load(DataConfig(data_dir=folder))


def test_corrupt_gzip_is_rejected(tmp_path, tiny_arrays):
    folder = write_idx_dir(tmp_path, tiny_arrays, gz=True)
    path = os.path.join(folder, "t10k-images-idx3-ubyte.gz")
    payload = open(path, "rb").read()
    open(path, "wb").write(payload[: len(payload) // 2])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        data.load(DataConfig(data_dir=folder))


def test_missing_and_empty_dirs(tmp_path):
    with pytest.raises(DataError, match="nope: --data_dir does not exist"):
        data.load(DataConfig(data_dir=str(tmp_path / "nope")))
    with pytest.raises(DataError, match="nope: DATA_DIR does not exist"):
        data.load(DataConfig(data_dir=str(tmp_path / "nope")), data_dir_name="DATA_DIR")
    with pytest.raises(DataError, match="found neither mnist.npz nor the four IDX files"):
        data.load(DataConfig(data_dir=str(tmp_path)))


def test_download_failure_points_to_data_dir(monkeypatch):
    import tensorflow as tf

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(tf.keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError, match="network is unreachable.*point --data_dir at a folder"):
        data.load(DataConfig())
    with pytest.raises(DataError, match="point DATA_DIR at a folder holding mnist.npz") as raised:
        data.load(DataConfig(), data_dir_name="DATA_DIR")
    assert "--data_dir" not in str(raised.value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_read_idx_fuzz(tmp_path_factory, payload):
    path = tmp_path_factory.mktemp("fuzz") / "train-labels-idx1-ubyte"
    path.write_bytes(payload)
    try:
        array = idx.read_idx(str(path))
    except DataError:
        return
    assert array.dtype == np.uint8
    assert array.size == len(payload) - 4 - 4 * array.ndim


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=400))
def test_read_npz_fuzz(tmp_path_factory, payload):
    path = tmp_path_factory.mktemp("fuzz") / "mnist.npz"
    path.write_bytes(payload)
    try:
        data.read_npz(str(path))
    except DataError:
        pass


def test_split_holds_out_last_fraction(tiny_arrays):
    raw = data.validate(dict(tiny_arrays), "t")
    splits = data.split(raw, DataConfig(validation_split=0.25))
    assert len(splits.x_train) == 480 and len(splits.x_val) == 160
    np.testing.assert_array_equal(splits.x_val, tiny_arrays["x_train"][480:])
    limited = data.split(raw, DataConfig(limit_train=100, limit_test=10))
    assert (len(limited.x_train), len(limited.x_val), len(limited.x_test)) == (80, 20, 10)


def test_split_refuses_empty_side(tiny_arrays):
    raw = data.validate(dict(tiny_arrays), "t")
    with pytest.raises(DataError, match="empty"):
        data.split(raw, DataConfig(limit_train=2, validation_split=0.1))


def test_preprocess_scales_flattens_one_hots(tiny_arrays):
    x, y = (
        t.numpy()
        for t in input_pipeline.preprocess_batch(
            tiny_arrays["x_test"][:7], tiny_arrays["y_test"][:7]
        )
    )
    assert x.shape == (7, 784) and x.dtype == np.float32
    np.testing.assert_array_equal(x, input_pipeline.to_model_input(tiny_arrays["x_test"][:7]))
    assert 0.0 <= x.min() and x.max() == 1.0
    assert y.shape == (7, 10)
    np.testing.assert_array_equal(y.argmax(1), tiny_arrays["y_test"][:7])
    np.testing.assert_array_equal(y.sum(1), 1.0)


def test_description_logs_shapes_ranges_counts(tiny_arrays, caplog):
    raw = data.validate(dict(tiny_arrays), "t")
    with caplog.at_level(logging.INFO, logger="absl"):
        data.log_description(data.split(raw, DataConfig()), "somewhere")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "Data source: somewhere" in text
    assert "train images (512, 28, 28) uint8 range [0, 255]" in text
    counts = np.bincount(tiny_arrays["y_test"], minlength=10)
    assert "class counts: " + " ".join(str(c) for c in counts) in text


@pytest.mark.skipif(
    not os.path.exists(os.path.join(REAL_MNIST, "mnist.npz")), reason="real MNIST not available"
)
def test_real_mnist_is_canonical():
    raw = data.load(DataConfig(data_dir=REAL_MNIST))
    assert raw.x_train.shape == (60000, 28, 28) and raw.x_test.shape == (10000, 28, 28)
    assert abs(raw.x_train.mean() - 33.3184214498) < 1e-6
    assert list(np.bincount(raw.y_train)) == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]


def test_read_npz_lets_a_programming_error_through(npz_dir, monkeypatch):
    """Only what a damaged archive raises becomes a DataError; a bug stays a traceback."""

    def broken(*args):
        raise TypeError("a bug")

    monkeypatch.setattr(data, "_check_npy_header", broken)
    with pytest.raises(TypeError, match="a bug"):
        data.read_npz(os.path.join(npz_dir, "mnist.npz"))
