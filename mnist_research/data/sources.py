"""Loading, validating, splitting and describing MNIST-shaped datasets.

The arrays come from ``--data_dir`` (a Keras-layout ``.npz``, read here, or the
four IDX files, read by ``data.idx``) or from ``tf.keras.datasets``
(``data.download``), and whatever the source are validated into one :class:`RawData`.
Every array's header is checked against the bytes its file holds before the array
is allocated or read, so a crafted header cannot make the loader allocate
petabytes. Any problem raises :class:`DataError` with one line that names the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import zipfile
import zlib

import numpy as np
from absl import logging

from mnist_research import config as config_lib
from mnist_research.config import DataConfig
from mnist_research.config.registry import MNIST_IDX_FILES, Dataset
from mnist_research.data.pipeline import IMAGE_SHAPE, NUM_CLASSES, NUM_PIXELS
from mnist_research.errors import DataError, one_line

# The most bytes one array (an IDX file or an .npz member) may declare. MNIST's
# training images are 47 MB.
MAX_ARRAY_BYTES = 1 << 31
# What a damaged or crafted archive raises. zipfile: encrypted members or unsupported
# compression (RuntimeError, NotImplementedError being one), bad CRCs or headers (BadZipFile),
# a member cut short (EOFError); zlib: a corrupt deflate stream (zlib.error); numpy:
# malformed array data (ValueError); either: the file itself unreadable (OSError).
_ZIP_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,
    ValueError,
)
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


@dataclasses.dataclass(frozen=True)
class RawData:
    """uint8 images ``[N, 28, 28]`` and uint8 labels ``[N]`` for both splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


@dataclasses.dataclass(frozen=True)
class Splits:
    """uint8 images and integer labels after the validation split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load(config: DataConfig, data_dir_name: str = "--data_dir") -> RawData:
    """Loads and validates the dataset that ``config`` names, then applies its ``transform``.

    ``data_dir_name`` is what an error line calls ``config.data_dir`` (``DATA_DIR``
    in the notebook).
    """
    dataset = config_lib.DATASETS[config.dataset]
    if config.data_dir:
        arrays, source = read_data_dir(config.data_dir, dataset, data_dir_name)
    else:  # imported only here: a run with --data_dir needs no downloader
        from mnist_research.data.download import download

        arrays = download(dataset, data_dir_name)
        source = f"tf.keras.datasets.{dataset.keras_name}"
    raw = validate(arrays, source)
    if dataset.transform is None:
        return raw
    return dataclasses.replace(
        raw, x_train=dataset.transform(raw.x_train), x_test=dataset.transform(raw.x_test)
    )


def read_data_dir(
    data_dir: str, dataset: Dataset, data_dir_name: str = "--data_dir"
) -> tuple[dict[str, np.ndarray], str]:
    """The four arrays by Keras name from a folder (npz or IDX files) or an ``.npz``; the source."""
    if os.path.isfile(data_dir):
        return read_npz(data_dir), data_dir
    if not os.path.lexists(data_dir):
        raise DataError(f"{data_dir}: {data_dir_name} does not exist")
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: {data_dir_name} is neither a folder nor a regular file")
    for name in dataset.npz_names:
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return read_npz(path), path
    from mnist_research.data import idx  # imported only here: an .npz needs none of it

    return idx.read_idx_dir(data_dir, dataset), data_dir


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Reads a Keras-layout ``.npz`` with ``allow_pickle=False``: an object array is refused."""
    try:
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not an .npz (zip) archive; truncated or not NumPy data")
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in MNIST_IDX_FILES if key not in npz.files]
            if missing:
                raise DataError(
                    f"{path}: missing array(s) {', '.join(missing)}; "
                    f"expected keys x_train, y_train, x_test, y_test"
                )
            for key in MNIST_IDX_FILES:
                _check_npy_header(path, npz.zip, key)
            return {key: npz[key] for key in MNIST_IDX_FILES}
    except _ZIP_ERRORS as e:  # a DataError raised above is none of these
        raise DataError(f"{path}: not a readable .npz file ({one_line(e)})") from None


def _check_npy_header(path: str, archive: zipfile.ZipFile, key: str) -> None:
    name = key if key in archive.namelist() else f"{key}.npy"
    where = f"{path}: member {name}"
    with archive.open(name) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version not in _NPY_HEADER_READERS:
                raise DataError(f"{where}: unsupported .npy format version {version}")
            shape, _, dtype = _NPY_HEADER_READERS[version](member)
        except ValueError as e:
            raise DataError(f"{where}: not a .npy array ({str(e).splitlines()[0]})") from None
        held = archive.getinfo(name).file_size - member.tell()
    if dtype.hasobject:
        raise DataError(f"{path}: holds object (pickled) arrays; refusing to unpickle")
    declared = declared_bytes(where, shape, dtype.itemsize)
    if held != declared:
        raise size_mismatch(where, shape, declared, f"the member holds {held:,}")


def declared_bytes(where: str, shape: tuple[int, ...], itemsize: int) -> int:
    """The bytes a header's shape declares; a DataError past MAX_ARRAY_BYTES or if negative."""
    if any(d < 0 for d in shape):
        raise DataError(f"{where}: header declares a negative shape {shape}")
    declared = math.prod(shape) * itemsize  # Python ints: no overflow
    if declared > MAX_ARRAY_BYTES:
        raise DataError(
            f"{where}: header declares shape {shape} ({declared:,} bytes), more "
            f"than the {MAX_ARRAY_BYTES:,} this loader accepts"
        )
    return declared


def size_mismatch(where: str, shape: tuple[int, ...], declared: int, held: str) -> DataError:
    return DataError(
        f"{where}: header declares shape {shape} ({declared:,} bytes) but {held}; "
        f"truncated or corrupt"
    )


def validate(arrays: dict[str, np.ndarray], source: str) -> RawData:
    """Checks shapes, dtypes, label range and counts; a DataError names the first problem."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataError(f"{source}: x_{split} has dtype {x.dtype}, expected uint8 pixels")
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{source}: x_{split} has shape {x.shape}, expected (N, 28, 28)")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"{source}: y_{split} has shape {y.shape} and dtype {y.dtype}, "
                f"expected integer labels of shape (N,)"
            )
        if len(x) != len(y):
            raise DataError(f"{source}: {len(x)} {split} images but {len(y)} {split} labels")
        if len(x) == 0:
            raise DataError(f"{source}: the {split} split is empty")
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise DataError(
                f"{source}: y_{split} has labels in [{y.min()}, {y.max()}], expected 0-9"
            )
    return RawData(
        x_train=arrays["x_train"],
        y_train=arrays["y_train"].astype(np.uint8),
        x_test=arrays["x_test"],
        y_test=arrays["y_test"].astype(np.uint8),
        source=source,
    )


def split(raw: RawData, config: DataConfig) -> Splits:
    """Holds out the last ``validation_split`` of training data (as Keras does).

    ``limit_train`` / ``limit_test`` take the first N examples before splitting;
    a DataError if either side of the split would be empty.
    """
    x, y = raw.x_train[: config.limit_train or None], raw.y_train[: config.limit_train or None]
    num_val = int(round(len(x) * config.validation_split))
    num_train = len(x) - num_val
    if num_val == 0 or num_train == 0:
        raise DataError(
            f"validation_split={config.validation_split} of {len(x)} training "
            f"examples leaves an empty training or validation set"
        )
    return Splits(
        x_train=x[:num_train],
        y_train=y[:num_train],
        x_val=x[num_train:],
        y_val=y[num_train:],
        x_test=raw.x_test[: config.limit_test or None],
        y_test=raw.y_test[: config.limit_test or None],
    )


def fingerprint(splits: Splits) -> str:
    """sha256 of the training and validation arrays a run trains and selects on.

    Shapes and dtypes are hashed with the bytes, so the same bytes split
    differently give another fingerprint. About 0.1 s for MNIST's 55,000 images.
    """
    digest = hashlib.sha256()
    for array in (splits.x_train, splits.y_train, splits.x_val, splits.y_val):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def log_description(splits: Splits, source: str) -> None:
    """Logs the source, then each split's shapes, value range and class counts."""
    logging.info(f"Data source: {source}")
    for name in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{name}"), getattr(splits, f"y_{name}")
        counts = np.bincount(y.astype(np.int64), minlength=NUM_CLASSES)
        logging.info(
            f"  {name:<5} images {tuple(x.shape)} {x.dtype} range [{x.min()}, {x.max()}] "
            f"-> inputs ({len(x)}, {NUM_PIXELS}) float32 in "
            f"[{x.min() / 255:.1f}, {x.max() / 255:.1f}], "
            f"labels ({len(y)}, {NUM_CLASSES}) one-hot"
        )
        logging.info(f"        class counts: {' '.join(str(int(c)) for c in counts)}")
