"""Reading a ``--data_dir``: a Keras-layout ``.npz`` here, the four IDX files in ``data.idx``.

An ``.npz`` is read with ``allow_pickle=False``, so an object array is refused,
never unpickled. Every array's header is checked against the bytes its file
holds before the array is allocated or read, so a crafted header cannot make
the loader allocate petabytes. Any problem raises :class:`DataError` with one
line that names the file.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib

import numpy as np

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
    declared = declared_bytes(where, shape, dtype.itemsize)
    if held != declared:
        raise size_mismatch(where, shape, declared, f"the member holds {held:,}")


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


def read_data_dir(
    data_dir: str, dataset: Dataset, data_dir_name: str = "--data_dir"
) -> tuple[dict[str, np.ndarray], str]:
    """The four arrays by Keras name from a folder (npz or IDX files) or an ``.npz``; the source.

    ``data_dir_name``: what an error line calls ``data_dir`` (see ``sources.load``).
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
    from mnist_research.data import idx  # imported only here: an .npz needs none of it

    return idx.read_idx_dir(data_dir, dataset), data_dir
