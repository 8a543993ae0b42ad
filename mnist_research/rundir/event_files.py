"""The framing of TFRecord (event) files, read without trusting it.

A record is ``uint64 length, uint32 checksum of the length, length bytes of
data, uint32 checksum of the data``. TensorFlow's reader allocates a record's
declared length before reading it, so one record declaring 8 GiB (with a valid
length checksum) crashes the process. :func:`whole_records` walks the lengths
alone (a 12-byte header and a seek per record) and counts the records that fit
in the file, so a reader can stop before the first that does not.
"""

from __future__ import annotations

import os

from mnist_research import files

_HEADER = 12  # the length and its checksum
_FOOTER = 4  # the data's checksum


def whole_records(path: str) -> tuple[int, str | None]:
    """How many records from the start fit in the file, and what is wrong after them.

    Raises:
      OSError: the file cannot be read or is not a regular file.
    """
    with files.open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        count = offset = 0
        while offset < size:
            left = size - offset - _HEADER - _FOOTER
            f.seek(offset)
            length = int.from_bytes(f.read(8), "little")
            if left < 0 or length > left:
                shown = f"declares {length:,} bytes of data" if left >= 0 else "is cut short"
                return count, (
                    f"record {count + 1} {shown}, more than the {max(left, 0):,} left in the file"
                )
            count += 1
            offset += _HEADER + length + _FOOTER
    return count, None
