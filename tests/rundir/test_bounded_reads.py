"""Issue 35 class 6: every file the project reads whole is read bounded, and never waited on.

A FIFO (which waits for a writer), a link to a device (``/dev/zero`` never ends) or a file
far larger than the project writes is refused at once, in one line, by every reader: the
flagfiles, ``config.json``, ``metrics.json``, the checkpoint state file and the images
``predict`` reads. Each read runs in a child process with a time and memory limit, so a
reader that would wait or read without end fails the test instead of hanging it.
"""

import gzip
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.helpers import REPO, idx_bytes

_CHILD = textwrap.dedent(
    """
    import os, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    from mnist_research import files, flagfiles
    from mnist_research.inference import imaging
    from mnist_research.rundir import layout, records

    for folder in sys.argv[1:]:
        kind = os.path.basename(folder)
        readers = {
            "flagfile": lambda: flagfiles.expand(["train", f"--flagfile={folder}/x.flags"]),
            "json": lambda: records.read_json(f"{folder}/x.json"),
            "config": lambda: records.load_config(folder),
            "metrics": lambda: records.finished_metrics(folder),
            "state": lambda: print(
                f"{kind}: state: the state file", layout.read_state(folder)[1]
            ),
            "image": lambda: imaging.load_grayscale(f"{folder}/x.png"),
        }
        for name, read in readers.items():
            try:
                read()
            except Exception as e:
                print(f"{kind}: {name}: {type(e).__name__}: {e}")
                continue
            if name != "state":
                print(f"{kind}: {name}: read without error")
    """
)

_FILES = ["x.flags", "x.json", "config.json", "metrics.json", "checkpoint", "x.png"]


_KINDS = {
    "fifo": "not a regular file but a FIFO",
    "dev_zero": "not a regular file but a character device",
    "huge": "larger than",
}


def test_every_reader_refuses_a_fifo_a_device_or_a_huge_file_at_once(tmp_path):
    for kind in _KINDS:
        (tmp_path / kind).mkdir()
        for name in _FILES:
            path = tmp_path / kind / name
            if kind == "fifo":
                os.mkfifo(path)
            elif kind == "dev_zero":
                path.symlink_to("/dev/zero")
            else:
                with open(path, "wb") as f:  # sparse: 100 MB of zeros, no disk used
                    f.truncate(100 << 20)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, *(str(tmp_path / kind) for kind in _KINDS)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=120,  # a reader that waits on the FIFO or reads /dev/zero without end
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(_KINDS) * 6, lines
    for kind, expected in _KINDS.items():
        found = dict(line.split(": ", 2)[1:] for line in lines if line.startswith(kind + ": "))
        assert sorted(found) == sorted(["flagfile", "json", "config", "metrics", "state", "image"])
        for reader, line in found.items():
            if reader == "image" and kind == "huge":  # decoded as a stream, capped by its pixels
                assert "not an image" in line
            else:
                assert expected in line, (kind, reader, line)


def test_an_idx_gz_declaring_other_data_than_its_trailer_is_refused_before_decompressing(
    tmp_path,
):
    from mnist_research.data import idx
    from mnist_research.errors import DataError

    # 60,000 zero images compress to ~60 KB; the header claims 1,900,000 (1.5 GB).
    payload = bytearray(idx_bytes(np.zeros((60_000, 28, 28), np.uint8)))
    payload[4:8] = (1_900_000).to_bytes(4, "big")
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(payload)
    assert path.stat().st_size < 1 << 20
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(DataError, match=r"declares shape \(1900000, 28, 28\).*gzip trailer"):
        idx.read_idx(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20  # nothing decompressed beyond the header
