"""Reading a TFRecord file (an event file) without trusting the lengths it declares."""

from __future__ import annotations

import os

from mnist_research.files import open_regular

# A record: ``uint64 length, uint32 checksum of the length, length bytes of data, uint32
# checksum of the data``.
_RECORD_HEADER = 12
_RECORD_FOOTER = 4


def whole_records(path: str) -> tuple[int, str | None]:
    """How many records of a TFRecord file fit in it from the start, and what is wrong after them.

    TensorFlow's reader allocates a record's declared length before reading it,
    so one record declaring 8 GiB (with a valid length checksum) crashes the
    process. This walks the lengths alone (a 12-byte header and a seek per
    record), so a reader can stop before the first record that does not fit.

    Raises:
      OSError: the file cannot be read or is not a regular file.
    """
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        count = offset = 0
        while offset < size:
            left = size - offset - _RECORD_HEADER - _RECORD_FOOTER
            f.seek(offset)
            length = int.from_bytes(f.read(8), "little")
            if left < 0 or length > left:
                shown = f"declares {length:,} bytes of data" if left >= 0 else "is cut short"
                return count, (
                    f"record {count + 1} {shown}, more than the {max(left, 0):,} left in the file"
                )
            count += 1
            offset += _RECORD_HEADER + length + _RECORD_FOOTER
    return count, None
