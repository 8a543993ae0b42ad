"""Connected regions of a binary mask (8-connectivity), labelled by ``scipy.ndimage``."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


@dataclasses.dataclass(frozen=True)
class Regions:
    """The regions of a mask, numbered 0 .. count-1 in reading order of their first pixel.

    Attributes:
      labels: int32 ``[H, W]``: 0 off the mask, ``k + 1`` on region ``k``.
      pixels: the flat indices of the mask's pixels; ``region``: the region of each.
      area: pixels per region. box: ``[count, 4]`` top, bottom, left, right (exclusive).
    """

    labels: np.ndarray
    pixels: np.ndarray
    region: np.ndarray
    area: np.ndarray
    box: np.ndarray

    @property
    def count(self) -> int:
        return len(self.area)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """The sum of ``values`` (an ``[H, W]`` array) over each region's pixels."""
        weights = np.asarray(values, np.float64).ravel()[self.pixels]
        return np.bincount(self.region, weights, self.count)

    def mask(self, keep) -> np.ndarray:
        """A bool mask of the pixels of the regions whose indices are in ``keep``."""
        return np.isin(self.labels, np.asarray(keep, np.int64) + 1)


def label(mask: np.ndarray) -> Regions:
    """The 8-connected regions of the bool ``[H, W]`` ``mask``."""
    labels, count = ndimage.label(np.asarray(mask, bool), EIGHT_NEIGHBOURS)
    pixels = np.flatnonzero(labels)
    region = labels.ravel()[pixels] - 1
    box = np.array(
        [
            (rows.start, rows.stop, cols.start, cols.stop)
            for rows, cols in ndimage.find_objects(labels)
        ],
        np.int64,
    ).reshape(count, 4)
    return Regions(labels, pixels, region, np.bincount(region, minlength=count), box)
