"""Connected regions of a mask (inference/components.py) against a plain flood fill."""

from collections import deque

import numpy as np
import pytest

from mnist_research.inference import components


def flood_fill_regions(mask: np.ndarray) -> list[set]:
    """The 8-connected regions of ``mask`` as sets of (row, col), by breadth-first search."""
    seen = np.zeros_like(mask, bool)
    regions = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start] = True
        queue, region = deque([start]), set()
        while queue:
            r, c = queue.popleft()
            region.add((r, c))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if (
                        0 <= rr < mask.shape[0]
                        and 0 <= cc < mask.shape[1]
                        and mask[rr, cc]
                        and not seen[rr, cc]
                    ):
                        seen[rr, cc] = True
                        queue.append((rr, cc))
        regions.append(region)
    return regions


@pytest.mark.parametrize("density", [0.05, 0.3, 0.45, 0.6])
@pytest.mark.parametrize("seed", [0, 1])
def test_regions_match_flood_fill(density, seed):
    mask = np.random.default_rng(seed).random((37, 53)) < density
    regions = components.label(mask)
    expected = flood_fill_regions(mask)
    assert regions.count == len(expected)
    found = []
    for k in range(regions.count):
        pixels = regions.mask([k])
        found.append(set(zip(*np.nonzero(pixels))))
        rows, cols = np.nonzero(pixels)
        assert regions.area[k] == len(rows)
        assert tuple(regions.box[k]) == (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
    assert sorted(map(sorted, found)) == sorted(map(sorted, expected))
    values = np.random.default_rng(seed + 10).random(mask.shape)
    sums = regions.sums(values)
    for k, region in enumerate(found):
        assert sums[k] == pytest.approx(sum(values[p] for p in region))


def test_diagonal_touch_joins_and_a_gap_separates():
    mask = np.zeros((6, 8), bool)
    mask[0, 0:3] = True
    mask[1, 3] = True  # touches the run above only at a corner: same region
    mask[4, 0:8] = True  # a row of gap below: a separate region
    regions = components.label(mask)
    assert regions.count == 2 and sorted(regions.area) == [4, 8]
    assert components.label(np.zeros((5, 5), bool)).count == 0
    assert components.label(np.ones((5, 5), bool)).count == 1
