"""Connected regions of a binary mask (8-connectivity), with NumPy only.

The mask is described by its runs (horizontal stretches of set pixels). Two
runs on neighbouring rows belong to the same region when they overlap or touch
diagonally; the regions are the connected components of that graph, found by
hooking each run to the smallest run label it is joined to and then jumping
pointers until nothing changes. Everything is vectorised over runs, so a noisy
512×512 mask (tens of thousands of runs) takes milliseconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Regions:
    """The runs of a mask and the region each belongs to.

    Attributes:
      shape: the mask's shape.
      row, start, stop: one entry per run: its row and its columns ``start:stop``.
      region: the region index of each run (0 .. count-1).
      area: pixels per region. box: ``[count, 4]`` top, bottom, left, right (exclusive).
    """

    shape: tuple[int, int]
    row: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    region: np.ndarray
    area: np.ndarray
    box: np.ndarray

    @property
    def count(self) -> int:
        return len(self.area)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """The sum of ``values`` (an ``[H, W]`` array) over each region's pixels."""
        running = np.zeros((self.shape[0], self.shape[1] + 1), np.float64)
        np.cumsum(values, axis=1, out=running[:, 1:])
        per_run = running[self.row, self.stop] - running[self.row, self.start]
        return np.bincount(self.region, weights=per_run, minlength=self.count)

    def mask(self, keep: np.ndarray) -> np.ndarray:
        """A bool mask of the pixels of the regions whose indices are in ``keep``."""
        chosen = np.isin(self.region, keep)
        height, width = self.shape
        edges = np.zeros((height, width + 1), np.int32)
        np.add.at(edges, (self.row[chosen], self.start[chosen]), 1)
        np.add.at(edges, (self.row[chosen], self.stop[chosen]), -1)
        return np.cumsum(edges, axis=1)[:, :width] > 0


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, start column and stop column (exclusive) of every run, in reading order."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), np.int8)
    padded[:, 1:-1] = mask
    changes = np.diff(padded, axis=1)  # +1 where a run starts, -1 just after it ends
    start_rows, starts = np.nonzero(changes == 1)
    _, stops = np.nonzero(changes == -1)
    return start_rows, starts, stops


def _join_touching(
    row: np.ndarray, start: np.ndarray, stop: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (run, run on the row above) that overlap or touch diagonally."""
    stride = width + 2  # keys order runs by (row, column) without collisions
    start_key = row * stride + start
    stop_key = row * stride + stop
    # Run j on row r-1 touches run i on row r when stop_j >= start_i and start_j <= stop_i.
    first = np.searchsorted(stop_key, (row - 1) * stride + start, side="left")
    last = np.searchsorted(start_key, (row - 1) * stride + stop, side="right")
    counts = np.clip(last - first, 0, None)
    runs = np.repeat(np.arange(len(row)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return runs, np.repeat(first, counts) + offsets


def _components(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Component label (0 .. k-1) of each of ``count`` nodes joined by the edges ``a``-``b``."""
    parent = np.arange(count)
    while True:
        while True:  # pointer jumping: every node points straight at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        root_a, root_b = parent[a], parent[b]
        if np.array_equal(root_a, root_b):
            break
        low = np.minimum(root_a, root_b)  # hook each root to the smaller root it touches
        np.minimum.at(parent, root_a, low)
        np.minimum.at(parent, root_b, low)
    return np.unique(parent, return_inverse=True)[1]


def label(mask: np.ndarray) -> Regions:
    """The 8-connected regions of the bool ``[H, W]`` ``mask``."""
    mask = np.asarray(mask, bool)
    row, start, stop = _runs(mask)
    a, b = _join_touching(row, start, stop, mask.shape[1])
    region = _components(len(row), a, b)
    count = int(region.max()) + 1 if len(region) else 0
    area = np.bincount(region, weights=stop - start, minlength=count).astype(np.int64)
    box = np.empty((count, 4), np.int64)
    box[:, 0], box[:, 2] = mask.shape[0], mask.shape[1]
    box[:, 1] = box[:, 3] = 0
    np.minimum.at(box[:, 0], region, row)
    np.maximum.at(box[:, 1], region, row + 1)
    np.minimum.at(box[:, 2], region, start)
    np.maximum.at(box[:, 3], region, stop)
    return Regions(mask.shape, row, start, stop, region, area, box)
