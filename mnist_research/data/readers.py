"""Reading MNIST-shaped arrays from files: a Keras-layout ``.npz``, the four IDX files, or Keras.

* a Keras-layout ``.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``),
  read with ``allow_pickle=False`` so an object array is refused, never
  unpickled;
* the four IDX files (``train-images-idx3-ubyte`` …, optionally ``.gz``);
* the Keras downloader (``tf.keras.datasets.<name>.load_data()``).

Any problem raises :class:`DataError` with one line that names the file.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from typing import Optional

import numpy as np

from mnist_research.errors import DataError

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# IDX magic: two zero bytes, a type code (0x08 = unsigned byte), number of dims.
_IDX_UBYTE = 0x08
_MAX_IDX_BYTES = 1 << 31


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Reads a Keras-layout ``.npz`` without ever unpickling.

    Raises:
      DataError: unreadable, not a zip, a missing key, or an object array.
    """
    arrays = {}
    try:
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not an .npz (zip) archive; truncated or not NumPy data")
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in IDX_NAMES if k not in archive.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}; "
                                f"expected keys x_train, y_train, x_test, y_test")
            for key in IDX_NAMES:
                arrays[key] = archive[key]
    except DataError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise DataError(f"{path}: holds object (pickled) arrays; refusing to unpickle") from None
        raise DataError(f"{path}: not a valid .npz file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    return arrays


def parse_idx(payload: bytes, name: str) -> np.ndarray:
    """Parses the bytes of one IDX file holding unsigned bytes.

    Args:
      payload: the whole (decompressed) file.
      name: the file's name, for error messages.

    Returns:
      A uint8 array with the shape the header declares.

    Raises:
      DataError: bad magic, a type other than ubyte, or a size mismatch.
    """
    if len(payload) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(payload)} bytes)")
    zero, dtype_code, ndim = payload[0:2], payload[2], payload[3]
    if zero != b"\x00\x00" or dtype_code != _IDX_UBYTE or not 1 <= ndim <= 4:
        raise DataError(f"{name}: wrong IDX magic number 0x{payload[:4].hex()} "
                        f"(expected 0x000008 followed by 1-4 dimensions)")
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise DataError(f"{name}: truncated IDX header")
    dims = tuple(int.from_bytes(payload[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(payload) - header
    if actual != expected:
        raise DataError(f"{name}: header declares shape {dims} ({expected} bytes of data) "
                        f"but the file holds {actual}; truncated or corrupt")
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file, gzipped (``.gz``) or raw."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                payload = f.read(_MAX_IDX_BYTES)
        else:
            with open(path, "rb") as f:
                payload = f.read(_MAX_IDX_BYTES)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    return parse_idx(payload, path)


def _find_idx_files(folder: str) -> Optional[dict[str, str]]:
    found = {}
    for key, stem in IDX_NAMES.items():
        for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                          stem.replace("-idx", ".idx") + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                found[key] = path
                break
    return found


def read_data_dir(data_dir: str, dataset: str) -> tuple[dict[str, np.ndarray], str]:
    """Reads a dataset from a folder (npz or IDX) or an ``.npz`` path.

    Returns:
      The four arrays by Keras name and a description of the source.
    """
    if os.path.isfile(data_dir):
        return read_npz(data_dir), data_dir
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: --data_dir does not exist")
    for name in (f"{dataset}.npz", "mnist.npz" if dataset == "mnist" else None):
        if name and os.path.isfile(os.path.join(data_dir, name)):
            path = os.path.join(data_dir, name)
            return read_npz(path), path
    found = _find_idx_files(data_dir)
    if found:
        missing = [IDX_NAMES[k] for k in IDX_NAMES if k not in found]
        if missing:
            raise DataError(f"{data_dir}: IDX file(s) missing: {', '.join(missing)} (.gz or raw)")
        return {k: read_idx(p) for k, p in found.items()}, data_dir
    raise DataError(f"{data_dir}: found neither {dataset}.npz nor the four IDX files "
                    f"({', '.join(IDX_NAMES.values())}, optionally .gz)")


def download(dataset: str) -> dict[str, np.ndarray]:
    """Loads through ``tf.keras.datasets`` (downloads on first use)."""
    import tensorflow as tf  # Imported here: reading local files needs no TF.

    loader = getattr(tf.keras.datasets, dataset)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as e:  # Keras raises many types for network failures.
        raise DataError(
            f"could not download {dataset} through tf.keras.datasets ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); without network access, pass "
            f"--data_dir=DIR where DIR holds {dataset}.npz or the four IDX files") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
