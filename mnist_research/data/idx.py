"""Reading the four IDX files (raw or ``.gz``) of an MNIST-shaped dataset.

Imported only when ``--data_dir`` holds IDX files rather than an ``.npz``. The
header is checked before the data is read: against the file's size, or for a
``.gz`` against the uncompressed size its gzip trailer records (modulo 2**32),
so a header declaring more images than the file holds is refused without
decompressing them.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from mnist_research import files
from mnist_research.config.registry import Dataset
from mnist_research.data.sources import declared_bytes, size_mismatch
from mnist_research.errors import DataError


def read_idx_dir(data_dir: str, dataset: Dataset) -> dict[str, np.ndarray]:
    """The four arrays by Keras name from ``dataset``'s IDX files in ``data_dir``."""
    found = {key: _find_idx_file(data_dir, stem) for key, stem in dataset.idx_files.items()}
    missing = [dataset.idx_files[key] for key, path in found.items() if path is None]
    if len(missing) == len(found):
        raise DataError(
            f"{data_dir}: found neither {' nor '.join(dataset.npz_names)} nor the four "
            f"IDX files ({', '.join(dataset.idx_files.values())}, optionally .gz)"
        )
    if missing:
        raise DataError(f"{data_dir}: IDX file(s) missing: {', '.join(missing)} (.gz or raw)")
    return {key: read_idx(path) for key, path in found.items()}


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file of unsigned bytes, gzipped (``.gz``) or raw."""
    gz = path.endswith(".gz")
    try:
        with files.open_regular(path) as raw:
            held = _stored_size(raw, path, gz)
            f = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
            shape, header_size = _idx_header(f, path)
            expected = declared_bytes(path, shape, 1)
            held -= header_size
            if (expected - held) % 2**32 != 0:  # the trailer records the size modulo 2**32
                trailer = " (its gzip trailer says so)" if gz else ""
                raise size_mismatch(path, shape, expected, f"the file holds {held:,}{trailer}")
            data = f.read(expected + 1)  # one more byte reveals trailing data
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if len(data) != expected:
        raise size_mismatch(path, shape, expected, f"the file holds {len(data):,}")
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
