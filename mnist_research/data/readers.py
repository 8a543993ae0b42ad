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
import math
import os
import zipfile
import zlib

import numpy as np

from mnist_research import files
from mnist_research.config.registry import MNIST_IDX_FILES, Dataset
from mnist_research.errors import DataError

# The four arrays every dataset has, by their Keras names (the npz keys).
IDX_NAMES = MNIST_IDX_FILES
# IDX magic: two zero bytes, a type code (0x08 = unsigned byte), number of dims.
_IDX_UBYTE = 0x08
# The most bytes one array (an IDX file or an .npz member) may declare. MNIST's
# training images are 47 MB; a header claiming more is refused before anything
# is allocated.
MAX_ARRAY_BYTES = 1 << 31
# What zipfile and numpy raise on a damaged or crafted archive: encrypted members
# (RuntimeError), unsupported compression (NotImplementedError), bad CRCs
# (BadZipFile), truncated streams (EOFError, zlib.error), short array data (ValueError).
_ZIP_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    KeyError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


def _npz_member(path: str, archive: zipfile.ZipFile, key: str) -> None:
    """Checks one member's ``.npy`` header against its size before numpy allocates it.

    Raises:
      DataError: the member is not a ``.npy`` array, holds objects, declares a
        shape that disagrees with its size, or is larger than MAX_ARRAY_BYTES.
    """
    name = key if key in archive.namelist() else f"{key}.npy"
    where = f"{path}: member {name}"
    info = archive.getinfo(name)
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if read_header is None:
                raise DataError(f"{where}: unsupported .npy format version {version}")
            shape, _, dtype = read_header(member)
        except ValueError as e:
            raise DataError(f"{where}: not a .npy array ({str(e).splitlines()[0]})") from None
        header_size = member.tell()
    if dtype.hasobject:
        raise DataError(f"{path}: holds object (pickled) arrays; refusing to unpickle")
    if any(d < 0 for d in shape):
        raise DataError(f"{where}: header declares a negative shape {shape}")
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_ARRAY_BYTES:
        raise DataError(
            f"{where}: header declares shape {shape} ({declared:,} bytes), more "
            f"than the {MAX_ARRAY_BYTES:,} this loader accepts"
        )
    if info.file_size - header_size != declared:
        raise DataError(
            f"{where}: header declares shape {shape} ({declared:,} bytes) but the "
            f"member holds {info.file_size - header_size:,}; truncated or corrupt"
        )


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Reads a Keras-layout ``.npz`` without ever unpickling.

    Every member's header is checked against its size before any array is
    allocated, so a crafted header cannot make the loader allocate petabytes.

    Raises:
      DataError: unreadable, not a zip, a missing key, a member that is not a
        ``.npy`` array, an object array, or an encrypted/unsupported member.
    """
    arrays = {}
    try:
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not an .npz (zip) archive; truncated or not NumPy data")
        with zipfile.ZipFile(path) as archive:
            names = {n[:-4] if n.endswith(".npy") else n for n in archive.namelist()}
            missing = [k for k in IDX_NAMES if k not in names]
            if missing:
                raise DataError(
                    f"{path}: missing array(s) {', '.join(missing)}; "
                    f"expected keys x_train, y_train, x_test, y_test"
                )
            for key in IDX_NAMES:
                _npz_member(path, archive, key)
        with np.load(path, allow_pickle=False) as archive:
            for key in IDX_NAMES:
                arrays[key] = archive[key]
    except DataError:
        raise
    except _ZIP_ERRORS as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise DataError(
                f"{path}: holds object (pickled) arrays; refusing to unpickle"
            ) from None
        raise DataError(
            f"{path}: not a readable .npz file ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise DataError(f"{path}: member {key} is not a .npy array")
    return arrays


def _idx_dims(header: bytes, name: str) -> tuple[tuple[int, ...], int]:
    """The dimensions an IDX header declares and the data bytes they need.

    Raises:
      DataError: bad magic, a type other than ubyte, or more than MAX_ARRAY_BYTES.
    """
    if len(header) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(header)} bytes)")
    zero, dtype_code, ndim = header[0:2], header[2], header[3]
    if zero != b"\x00\x00" or dtype_code != _IDX_UBYTE or not 1 <= ndim <= 4:
        raise DataError(
            f"{name}: wrong IDX magic number 0x{header[:4].hex()} "
            f"(expected 0x000008 followed by 1-4 dimensions)"
        )
    if len(header) < 4 + 4 * ndim:
        raise DataError(f"{name}: truncated IDX header")
    dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(dims)  # Python ints: no overflow
    if expected > MAX_ARRAY_BYTES:
        raise DataError(
            f"{name}: header declares shape {dims} ({expected:,} bytes), more than "
            f"the {MAX_ARRAY_BYTES:,} this loader accepts"
        )
    return dims, expected


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
    dims, expected = _idx_dims(payload[:20], name)  # 4 magic bytes, up to 4 dims
    header = 4 + 4 * len(dims)
    actual = len(payload) - header
    if actual != expected:
        raise DataError(
            f"{name}: header declares shape {dims} ({expected} bytes of data) "
            f"but the file holds {actual}; truncated or corrupt"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file, gzipped (``.gz``) or raw.

    The header is checked before the data is read: against the file's size,
    or for a ``.gz`` against the uncompressed size its gzip trailer records
    (modulo 2**32), so a header declaring more images than the file holds is
    refused without decompressing them.
    """
    try:
        with files.open_regular(path) as raw:
            stored = _stored_size(raw, path)
            f = gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw
            header = f.read(4)
            header += f.read(4 * header[3]) if len(header) == 4 else b""
            dims, expected = _idx_dims(header, path)
            if (len(header) + expected) % 2**32 != stored:
                raise DataError(
                    f"{path}: header declares shape {dims} ({expected:,} bytes of data) but "
                    f"the file holds {stored - len(header):,}"
                    f"{' (its gzip trailer says so)' if path.endswith('.gz') else ''}; "
                    f"truncated or corrupt"
                )
            payload = header + f.read(expected + 1)  # one more byte reveals trailing data
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    return parse_idx(payload, path)


def _stored_size(f, path: str) -> int:
    """The size of the IDX data in ``f``: its own, or for a ``.gz`` what its trailer records."""
    size = os.fstat(f.fileno()).st_size
    if not path.endswith(".gz"):
        return size
    if size < 18:  # a gzip header and trailer
        raise DataError(f"{path}: too short to be a gzip file ({size} bytes)")
    f.seek(-4, os.SEEK_END)
    stored = int.from_bytes(f.read(4), "little")  # ISIZE: the uncompressed size mod 2**32
    f.seek(0)
    return stored


def _find_idx_files(folder: str, names: dict[str, str]) -> dict[str, str] | None:
    found = {}
    for key, stem in names.items():
        for candidate in (
            stem,
            stem + ".gz",
            stem.replace("-idx", ".idx"),
            stem.replace("-idx", ".idx") + ".gz",
        ):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                found[key] = path
                break
    return found


def read_data_dir(
    data_dir: str, dataset: Dataset, data_dir_name: str = "--data_dir"
) -> tuple[dict[str, np.ndarray], str]:
    """Reads a dataset from a folder (npz or IDX files named by its entry) or an ``.npz`` path.

    ``data_dir_name`` is what the caller calls ``data_dir`` in its error lines
    (a command's ``--data_dir``, the notebook's ``DATA_DIR``).

    Returns:
      The four arrays by Keras name and a description of the source.
    """
    if os.path.isfile(data_dir):
        return read_npz(data_dir), data_dir
    if not os.path.lexists(data_dir):
        raise DataError(f"{data_dir}: {data_dir_name} does not exist")
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: {data_dir_name} is neither a folder nor a regular file")
    for name in dataset.npz_names:
        if os.path.isfile(os.path.join(data_dir, name)):
            path = os.path.join(data_dir, name)
            return read_npz(path), path
    found = _find_idx_files(data_dir, dataset.idx_files)
    if found:
        missing = [dataset.idx_files[k] for k in dataset.idx_files if k not in found]
        if missing:
            raise DataError(f"{data_dir}: IDX file(s) missing: {', '.join(missing)} (.gz or raw)")
        return {k: read_idx(p) for k, p in found.items()}, data_dir
    raise DataError(
        f"{data_dir}: found neither {' nor '.join(dataset.npz_names)} nor the four "
        f"IDX files ({', '.join(dataset.idx_files.values())}, optionally .gz)"
    )


def download(dataset: Dataset, data_dir_name: str = "--data_dir") -> dict[str, np.ndarray]:
    """Loads through ``tf.keras.datasets`` (downloads on first use).

    ``data_dir_name``: the setting an error line tells to point at local files.

    Raises:
      DataError: the dataset has no Keras downloader, or the download failed.
    """
    if dataset.keras_name is None:
        raise DataError(
            f"{dataset.name} has no Keras downloader: {_local_files(dataset, data_dir_name)}"
        )
    import tensorflow as tf  # Imported here: reading local files needs no TF.

    loader = getattr(tf.keras.datasets, dataset.keras_name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as e:  # Keras raises many types for network failures.
        raise DataError(
            f"could not download {dataset.name} through tf.keras.datasets ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); without network access, "
            f"{_local_files(dataset, data_dir_name)}"
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _local_files(dataset: Dataset, data_dir_name: str) -> str:
    return (
        f"point {data_dir_name} at a folder holding {' or '.join(dataset.npz_names)} "
        f"or the four IDX files"
    )
