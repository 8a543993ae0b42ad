"""Reading MNIST-shaped arrays: a Keras-layout ``.npz``, the four IDX files (or ``.gz``), or Keras.

An ``.npz`` is read with ``allow_pickle=False``, so an object array is refused,
never unpickled. Every array's header is checked against the bytes its file
holds before the array is allocated or read, so a crafted header cannot make
the loader allocate petabytes. Any problem raises :class:`DataError` with one
line that names the file.
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
from mnist_research.errors import DataError, one_line

# The most bytes one array (an IDX file or an .npz member) may declare. MNIST's
# training images are 47 MB.
MAX_ARRAY_BYTES = 1 << 31
# What a damaged or crafted archive raises. zipfile: encrypted members (RuntimeError),
# unsupported compression (NotImplementedError), bad CRCs or headers (BadZipFile), a
# member cut short (EOFError); zlib: a corrupt deflate stream (zlib.error); numpy:
# malformed array data (ValueError); either: the file itself unreadable (OSError).
_ZIP_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,
    NotImplementedError,
    ValueError,
)
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _declared_bytes(where: str, shape: tuple[int, ...], itemsize: int) -> int:
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


def _size_mismatch(where: str, shape: tuple[int, ...], declared: int, held: str) -> DataError:
    return DataError(
        f"{where}: header declares shape {shape} ({declared:,} bytes) but {held}; "
        f"truncated or corrupt"
    )


def _check_npy_header(path: str, archive: zipfile.ZipFile, key: str) -> None:
    """Checks one member's ``.npy`` header against its size before numpy allocates it."""
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
    declared = _declared_bytes(where, shape, dtype.itemsize)
    if held != declared:
        raise _size_mismatch(where, shape, declared, f"the member holds {held:,}")


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Reads a Keras-layout ``.npz`` without unpickling, every member's header checked first."""
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
    except DataError:
        raise
    except _ZIP_ERRORS as e:
        raise DataError(f"{path}: not a readable .npz file ({one_line(e)})") from None


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file of unsigned bytes, gzipped (``.gz``) or raw.

    The header is checked before the data is read: against the file's size,
    or for a ``.gz`` against the uncompressed size its gzip trailer records
    (modulo 2**32), so a header declaring more images than the file holds is
    refused without decompressing them.
    """
    gz = path.endswith(".gz")
    try:
        with files.open_regular(path) as raw:
            held = _stored_size(raw, path, gz)
            f = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
            shape, header_size = _idx_header(f, path)
            expected = _declared_bytes(path, shape, 1)
            held -= header_size
            if (expected - held) % 2**32 != 0:  # the trailer records the size modulo 2**32
                trailer = " (its gzip trailer says so)" if gz else ""
                raise _size_mismatch(path, shape, expected, f"the file holds {held:,}{trailer}")
            data = f.read(expected + 1)  # one more byte reveals trailing data
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if len(data) != expected:
        raise _size_mismatch(path, shape, expected, f"the file holds {len(data):,}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _idx_header(f, path: str) -> tuple[tuple[int, ...], int]:
    """The shape an IDX header declares (unsigned bytes, 1-4 dimensions), and its size."""
    header = f.read(4)
    if len(header) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(header)} bytes)")
    if header[:3] != b"\x00\x00\x08" or not 1 <= header[3] <= 4:
        raise DataError(
            f"{path}: wrong IDX magic number 0x{header.hex()} "
            f"(expected 0x000008 followed by 1-4 dimensions)"
        )
    dims = f.read(4 * header[3])
    if len(dims) < 4 * header[3]:
        raise DataError(f"{path}: truncated IDX header")
    return tuple(int(d) for d in np.frombuffer(dims, ">u4")), 4 + len(dims)


def _stored_size(f, path: str, gz: bool) -> int:
    """The size of the IDX file ``f``: its own, or for a ``.gz`` what its trailer records."""
    size = os.fstat(f.fileno()).st_size
    if not gz:
        return size
    if size < 18:  # a gzip header and trailer
        raise DataError(f"{path}: too short to be a gzip file ({size} bytes)")
    f.seek(-4, os.SEEK_END)
    stored = int.from_bytes(f.read(4), "little")  # ISIZE: the uncompressed size mod 2**32
    f.seek(0)
    return stored


def _find_idx_file(folder: str, stem: str) -> str | None:
    """``stem`` in ``folder``, raw or ``.gz``, also with ``.idx`` for ``-idx`` in its name."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (name, name + ".gz"):
            if os.path.isfile(os.path.join(folder, candidate)):
                return os.path.join(folder, candidate)
    return None


def read_data_dir(
    data_dir: str, dataset: Dataset, data_dir_name: str = "--data_dir"
) -> tuple[dict[str, np.ndarray], str]:
    """The four arrays by Keras name from a folder (npz or IDX files) or an ``.npz``; the source.

    ``data_dir_name`` is what an error line calls ``data_dir`` (a command's
    ``--data_dir``, the notebook's ``DATA_DIR``).
    """
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
    found = {key: _find_idx_file(data_dir, stem) for key, stem in dataset.idx_files.items()}
    missing = [dataset.idx_files[key] for key, path in found.items() if path is None]
    if len(missing) == len(found):
        raise DataError(
            f"{data_dir}: found neither {' nor '.join(dataset.npz_names)} nor the four "
            f"IDX files ({', '.join(dataset.idx_files.values())}, optionally .gz)"
        )
    if missing:
        raise DataError(f"{data_dir}: IDX file(s) missing: {', '.join(missing)} (.gz or raw)")
    return {key: read_idx(path) for key, path in found.items()}, data_dir


def download(dataset: Dataset, data_dir_name: str = "--data_dir") -> dict[str, np.ndarray]:
    """Loads through ``tf.keras.datasets`` (downloads on first use); a DataError if that fails."""
    import tensorflow as tf  # Imported here: reading local files needs no TF.

    loader = getattr(tf.keras.datasets, dataset.keras_name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as e:  # Keras raises many types for network failures.
        raise DataError(
            f"could not download {dataset.name} through tf.keras.datasets ({one_line(e)}); "
            f"without network access, point {data_dir_name} at a folder holding "
            f"{' or '.join(dataset.npz_names)} or the four IDX files"
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
