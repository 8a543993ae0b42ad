"""Finding the ink of one digit in a photo or scan, the way document-imaging code does.

1. Work on a copy whose long side is at most ``WORK_SIDE`` pixels (area
   averaging, which also averages sensor noise). When the digit found there is
   smaller than ``REFINE_BELOW`` pixels and the original has more detail, the
   steps are repeated on the original around it, so a small digit in a large
   photo keeps its detail.
2. Polarity: after removing a fitted plane (the overall lighting gradient),
   the ink is on the side whose extreme values lie further from the median:
   the paper is the bulk of the picture, the ink its tail.
   When the border's median lies clearly on one side of the picture's range,
   the border (mostly paper even in a tight crop) decides instead: after
   removing the plane, else on the picture as it is (in a dense picture with
   its ink on one side the fitted plane is the ink's tilt, not the lighting's).
3. Illumination is flattened with a local background: a low percentile of
   each of ``GRID``×``GRID`` blocks, then a grey-level opening over
   ``OPENING``×``OPENING`` blocks (wider than any stroke of a digit that fits
   in the picture, so the ink is removed from it), smoothed and interpolated.
   A dense picture (a first guess at the ink covers more than ``DENSE`` of it,
   with strokes at least ``MIN_STROKE`` wide: a tight crop, a filled canvas, a
   low-resolution scan) widens the window to ``STROKE_WINDOW`` measured stroke
   widths, or, with no room for such a window, uses one level; its paper level
   is the class below Otsu's cut, and its regions grow by hysteresis.
4. Denoising: a Gaussian blur whose width follows the noise level measured on
   paper away from the first guess at the ink (in a picture a few strokes
   across, where little paper is away from the ink, on the paper's lower half).
5. Threshold: Otsu's, but never below a noise floor (a multiple of the robust
   noise level), so a small digit among much paper still separates.
6. The digit is the 8-connected ink region holding the most ink (area times
   contrast) plus the regions with at least ``KEEP_MASS`` of its ink within
   ``KEEP_DISTANCE`` of it (detached strokes); specks, dust, faint shadows and
   distant marks are dropped.
The result is an ink-coverage map in [0, 1] (the stroke's own level is 1, the
paper 0, soft edges in between) and the digit's bounding box.

The blur, the dilation, the grey-level opening and the labelling of regions
(``components``) are ``scipy.ndimage``'s; Otsu's threshold, which SciPy does not
have, is scikit-image's.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.filters import threshold_otsu

from mnist_research.errors import ImageError
from mnist_research.inference import components

WORK_SIDE = 320
REFINE_BELOW = 80  # pixels: a digit smaller than this on the reduced copy is found again
MIN_SIDE = 8  # pixels: a smaller picture cannot hold a digit
GRID = 16  # background blocks along the long side
OPENING = 5  # blocks: the background window, 5/16 of the long side
MIN_CONTRAST = 32.0  # grey levels between paper and ink below which there is no digit
KEEP_MASS = 0.05  # of the main region's ink: smaller regions are specks
KEEP_DISTANCE = 0.3  # of the main region's longer side: farther regions are other marks
# Another region is digit-sized when it holds OTHER_MASS of the digit's ink and is at least
# OTHER_HEIGHT of its height; a kept one that tall standing beside it (no column shared)
# is another digit, not a detached stroke.
OTHER_MASS, OTHER_HEIGHT = 0.25, 0.5
MAX_ASPECT = WORK_SIDE // MIN_SIDE  # a longer strip has no working copy with both sides kept
# Denoising blur: BLUR_BASE + noise / BLUR_PER pixels (at most BLUR_MAX), the noise being
# the measured standard deviation in grey levels. Ink at or above the LEVEL_PERCENTILE of
# the digit's pixels counts as full coverage. Chosen on 500 test digits rendered under four
# conditions (plain, noise 30, small, phone photo); the alternatives tried (base 0-0.7,
# percentile 50-75) were within 1 point of each other.
BLUR_BASE, BLUR_PER, BLUR_MAX = 0.4, 6.0, 2.5
LEVEL_PERCENTILE = 65
BORDER_SIDE = 0.25  # of the picture's range: the border's median decides the polarity
MIN_STROKE = 2.0  # pixels: a first guess at the ink with narrower "strokes" is grain
DENSE = 0.2  # a first guess at the ink above this fraction of the picture: a dense picture
STROKE_WINDOW = 3.0  # a dense picture's background window spans this many stroke widths
HYSTERESIS = 0.5  # of the threshold: fainter ink joined to ink above the threshold counts
ROOM = 3  # a local background needs a picture this many background windows across


@dataclasses.dataclass(frozen=True)
class Ink:
    """``coverage``: float32 ``[H, W]`` in [0, 1]; ``box``: top, bottom, left, right (exclusive).

    ``digits``: how many digit-sized ink regions the picture holds (the one
    chosen included); more than 1 means the others were left out.
    """

    coverage: np.ndarray
    box: tuple[int, int, int, int]
    digits: int = 1


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float ``[H, W]`` array to ``3 sigma`` (edges repeated), float32."""
    out = np.asarray(image, np.float32)
    if sigma <= 0:
        return out
    return ndimage.gaussian_filter(out, sigma, mode="nearest", radius=max(1, math.ceil(3 * sigma)))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of a bool ``[H, W]`` mask by a ``(2 radius + 1)``-pixel square."""
    # A square's maximum filter runs row by row and column by column: several times
    # faster than ndimage.binary_dilation with the same square, for the same pixels.
    grown = ndimage.maximum_filter(np.asarray(mask, np.uint8), size=2 * radius + 1, mode="constant")
    return grown.astype(bool)


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation."""
    values = np.asarray(values, np.float32).ravel()
    if values.size == 0:
        return 0.0
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def shrink(gray: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """``gray`` area-averaged so its long side is at most ``side``; and the factor used.

    The short side is never reduced below ``MIN_SIDE``.
    """
    height, width = gray.shape
    factor = min(max(height, width) / side, min(height, width) / MIN_SIDE)
    if factor <= 1:
        return np.asarray(gray, np.float32), 1.0
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = Image.fromarray(np.asarray(gray, np.float32)).resize(size, Image.Resampling.BOX)
    return np.asarray(small, np.float32), factor


def _plane(gray: np.ndarray) -> np.ndarray:
    """The least-squares tilt of ``gray`` (its mean left in): the overall lighting gradient."""
    height, width = gray.shape
    rows = np.arange(height, dtype=np.float32) - (height - 1) / 2
    cols = np.arange(width, dtype=np.float32) - (width - 1) / 2
    # With centred coordinates the three terms are orthogonal.
    row_slope = float(rows @ gray.mean(axis=1)) / max(float(rows @ rows), 1e-6)
    col_slope = float(gray.mean(axis=0) @ cols) / max(float(cols @ cols), 1e-6)
    return row_slope * rows[:, None] + col_slope * cols[None, :]


def _border_side(level: np.ndarray) -> tuple[float, float]:
    """Where the border's median lies in ``level``'s range (-0.5 .. 0.5), and that range."""
    low, high = np.quantile(level, [0.01, 0.99])
    border = np.concatenate([level[0], level[-1], level[1:-1, 0], level[1:-1, -1]])
    return (float(np.median(border)) - (low + high) / 2) / max(high - low, 1e-6), high - low


def ink_is_dark(gray: np.ndarray) -> bool:
    """Whether the ink is darker than the paper (the usual scan) or lighter (MNIST itself).

    The paper is what most of the picture's border is, when the border's median
    lies clearly on one side of the picture's range (a tight crop, a filled
    canvas and a page all have mostly paper at their border, even where the ink
    touches it): first after removing the fitted lighting plane and blurring
    by 1 px (against noise), then, if that is not clear, on the picture as it
    is: where ink covers one side of a dense picture, the least-squares plane
    is the ink's tilt, not the lighting's, and removing it pulls the border
    towards the middle; in a picture a few strokes across, the blur mixes the
    border with the ink next to it.
    Otherwise the ink is the side whose extreme values lie further from the
    median: the paper is the bulk of the picture, the ink its tail.
    """
    level = gaussian_blur(gray - _plane(gray), 1.0)
    for picture in (level, gray):
        side, contrast = _border_side(picture)
        if abs(side) > BORDER_SIDE and contrast >= MIN_CONTRAST:
            return side > 0
    tail = max(1e-4, min(0.01, 20.0 / level.size))
    median = float(np.median(level))
    low, high = np.quantile(level, [tail, 1.0 - tail])
    return median - low >= high - median


def stroke_width(mask: np.ndarray) -> float:
    """The mean width in pixels of the strokes of a bool mask (0 when it is empty).

    A stroke of width w and length L has area w·L and a boundary of about 2·L;
    the boundary is counted as the pixel edges between set and unset pixels
    (horizontal plus vertical), which for strokes in every direction exceeds the
    Euclidean length by 4/π on average.
    """
    mask = np.asarray(mask, bool)
    area = int(mask.sum())
    padded = np.pad(mask, 1)
    edges = int((padded[1:] != padded[:-1]).sum() + (padded[:, 1:] != padded[:, :-1]).sum())
    return 0.0 if edges == 0 else 2.0 * area / (edges * math.pi / 4)


def edge_width(coverage: np.ndarray) -> float:
    """The mean width in pixels over which ``coverage`` rises from paper to ink (0 if none).

    Measured between the levels 0.1 and 0.9: 0.8 over the mean gradient there.
    """
    rows, cols = np.gradient(np.asarray(coverage, np.float32))
    edge = (coverage > 0.1) & (coverage < 0.9)
    return 0.8 / max(float(np.hypot(rows, cols)[edge].mean()), 1e-6) if edge.any() else 0.0


def background(ink_up: np.ndarray, stroke: float = 0.0) -> np.ndarray:
    """The paper's level under light ink (``ink_up``: ink bright, paper dark), per pixel.

    The opening's window is ``OPENING`` blocks, widened to ``STROKE_WINDOW``
    times the measured ``stroke`` width when that is larger; a window as wide
    as the picture gives its darkest paper, one level for the whole picture.
    """
    height, width = ink_up.shape
    block = max(1, math.ceil(max(height, width) / GRID))
    rows, cols = math.ceil(height / block), math.ceil(width / block)
    padded = np.pad(ink_up, ((0, rows * block - height), (0, cols * block - width)), mode="edge")
    blocks = padded.reshape(rows, block, cols, block).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    grid = np.percentile(blocks, 25, axis=-1).astype(np.float32)
    if STROKE_WINDOW * stroke * ROOM > min(height, width):
        # No room for a window wider than any stroke with paper beside it: one level,
        # the paper's (the bulk of the darker side).
        return np.full_like(ink_up, float(np.percentile(ink_up, 25)))
    opening = max(OPENING, math.ceil(STROKE_WINDOW * stroke / block)) | 1  # odd
    grid = ndimage.grey_opening(grid, size=opening, mode="nearest")
    grid = ndimage.uniform_filter(grid, 3, mode="nearest")
    full = Image.fromarray(grid).resize((cols * block, rows * block), Image.Resampling.BILINEAR)
    return np.asarray(full, np.float32)[:height, :width]


def _rough_ink(ink_up: np.ndarray) -> np.ndarray:
    """A first guess at the ink: Otsu's threshold after removing the fitted lighting plane."""
    flat = ink_up - _plane(ink_up)
    return flat > threshold_otsu(flat)


def _paper_noise(flat: np.ndarray, rough: np.ndarray) -> float:
    """The noise level (grey levels) from neighbouring pixels of paper away from the ink.

    Differences across the soft edge of a stroke are signal, not noise; in a small
    or low-resolution picture they are most of the differences. So the pairs are
    taken 2 pixels away from the first guess at the ink, else 1 pixel away; in a
    small picture the ink fills (fewer than 16 such pairs) only pairs in the lower
    half of the paper's levels are sure to be paper (the upper half holds the soft
    edges), which underestimates the noise rather than mistake edges for it; with
    no such pairs the noise is taken as 0.
    """
    away = ~dilate(rough, 2)
    diffs = np.diff(flat[::3], axis=1)[away[::3, 1:] & away[::3, :-1]]  # every 3rd row will do
    if diffs.size < 64:
        for radius in (2, 1):
            away = ~dilate(rough, radius)
            diffs = np.diff(flat, axis=1)[away[:, 1:] & away[:, :-1]]
            if diffs.size >= 16:
                break
    if diffs.size < 16 and (~rough).any():
        paper = flat < np.median(flat[~rough])
        diffs = np.diff(flat, axis=1)[paper[:, 1:] & paper[:, :-1]]
    if diffs.size < 16:
        return 0.0
    return robust_sigma(diffs) / math.sqrt(2)


def _select(
    regions: components.Regions, contrast: np.ndarray, threshold: float
) -> tuple[np.ndarray, int]:
    """Indices of the digit's regions (see the module docstring), empty if none is ink;
    and how many other digit-sized regions there are.

    Regions are weighed by their ink (the summed ``contrast``), so a large but
    faint shadow or paper edge loses to the strokes; a region whose part above
    ``threshold`` is fainter on average than ``MIN_CONTRAST``, or which has no
    such part, is never the digit.
    """
    mass = regions.sums(contrast)
    above = contrast > threshold  # a region is ink only through its part above the threshold
    strong_area = regions.sums(above)
    strong_mass = regions.sums(np.where(above, contrast, 0.0))
    mass[(strong_area == 0) | (strong_mass < MIN_CONTRAST * strong_area)] = 0.0
    largest = int(np.argmax(mass))
    if mass[largest] <= 0:
        return np.array([], np.int64), 0
    top, bottom, left, right = regions.box[largest]
    reach = KEEP_DISTANCE * max(bottom - top, right - left)
    gap_rows = np.maximum(0, np.maximum(top - regions.box[:, 1], regions.box[:, 0] - bottom))
    gap_cols = np.maximum(0, np.maximum(left - regions.box[:, 3], regions.box[:, 2] - right))
    near = np.maximum(gap_rows, gap_cols) <= reach
    heights = regions.box[:, 1] - regions.box[:, 0]
    digit_sized = (mass >= OTHER_MASS * mass[largest]) & (heights >= OTHER_HEIGHT * (bottom - top))
    beside = (regions.box[:, 3] <= left) | (regions.box[:, 2] >= right)
    other = digit_sized & (beside | ~near)
    other[largest] = False
    keep = np.flatnonzero(near & ~other & (mass >= KEEP_MASS * mass[largest]))
    return keep, int(other.sum())


def _segment(gray: np.ndarray, name: str) -> Ink:
    """Steps 2-6 on a working-size picture."""
    ink_up = 255.0 - gray if ink_is_dark(gray) else gray
    rough = _rough_ink(ink_up)
    stroke = stroke_width(rough)
    # Only in a dense picture is the first guess the strokes: on a page under a strong
    # lighting gradient it can be a dark corner, whose "width" is no stroke's; on a noisy
    # page with faint ink it can be half the paper's grain (speckle, narrower than a stroke).
    dense = rough.mean() > DENSE and stroke >= MIN_STROKE
    flat = ink_up - background(ink_up, stroke if dense else 0.0)
    noise = _paper_noise(flat, rough)
    blur = min(BLUR_MAX, BLUR_BASE + noise / BLUR_PER)
    smooth = gaussian_blur(flat, blur)
    sample = smooth[1::3, 1::3] if min(smooth.shape) >= 3 * MIN_SIDE else smooth
    if dense:
        # Ink covers much of the picture (a tight crop, a filled canvas): the median is
        # no longer the paper's level, and the spread of all pixels is not the paper's.
        # The paper is the class below Otsu's cut; its upper half holds the soft edges of
        # the strokes, so its spread is measured on its lower side.
        paper = sample[sample < threshold_otsu(sample)]
        level = float(np.median(paper))
        spread = level - float(np.percentile(paper, 15.9))
    else:
        level, spread = float(np.median(sample)), robust_sigma(sample)
    smooth -= level
    floor = max(4.0 * spread, MIN_CONTRAST / 4)
    threshold = float(threshold_otsu(smooth))
    if threshold < floor:
        above = smooth[smooth > floor]
        threshold = max(threshold_otsu(above), floor) if above.size > 1 else floor
    # Hysteresis in a dense picture: a region is the ink above half the threshold joined
    # to ink above it, so a stroke that fades (a blurred low-resolution scan) stays in one
    # piece. On a page it would join the grain of a noisy paper into ink-sized regions.
    low = max(floor, HYSTERESIS * threshold) if dense else threshold
    regions = components.label(smooth > low)
    keep, others = _select(regions, smooth, threshold) if regions.count else ([], 0)
    if len(keep) == 0:
        raise ImageError(f"{name}: {_why_no_ink(smooth)}")
    mask = regions.mask(keep)
    level = float(np.percentile(smooth[mask], LEVEL_PERCENTILE))
    radius = max(1, math.ceil(2 * blur))
    base = min(floor, threshold / 2)
    coverage = np.clip((smooth - base) / max(level - base, 1e-6), 0.0, 1.0)
    coverage[~dilate(mask, radius)] = 0.0
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return Ink(
        coverage.astype(np.float32),
        (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1),
        1 + others,
    )


def _why_no_ink(smooth: np.ndarray) -> str:
    """Why no region is ink: a blank page, or ink the paper's own variations hide."""
    low, high = np.percentile(smooth, [0.5, 99.5])
    if high - low < MIN_CONTRAST:
        return (
            f"no ink found: a blank page (after denoising, its grey levels vary by "
            f"{high - low:.0f}, less than the {MIN_CONTRAST:.0f} between paper and ink)"
        )
    return (
        f"no ink found: the ink is not separable from the background (grey levels vary "
        f"by {high - low:.0f}, but no stroke stands out from the paper's own variations: "
        f"shadows, lines or texture as strong as the ink)"
    )


def find_ink(gray: np.ndarray, name: str = "image") -> Ink:
    """The digit's ink in a grayscale ``[H, W]`` picture (any polarity, lighting and size).

    Raises:
      ImageError: no ink (a blank page, or ink not separable from the
        background: the message says which), a picture less than ``MIN_SIDE``
        pixels wide or high, or sides more than ``MAX_ASPECT``:1 apart.
    """
    if min(gray.shape) < MIN_SIDE:
        raise ImageError(
            f"{name}: {gray.shape[1]}x{gray.shape[0]} pixels is too small to hold "
            f"a digit (at least {MIN_SIDE} pixels a side)"
        )
    check_aspect(gray.shape[1], gray.shape[0], name)
    small, factor = shrink(gray)
    ink = _segment(small, name)
    top, bottom, left, right = ink.box
    if factor <= 1 or max(bottom - top, right - left) >= REFINE_BELOW:
        return ink
    # A small digit in a large picture: find it again in the original around it.
    top, bottom, left, right = (round(v * factor) for v in ink.box)
    margin = (bottom - top + right - left) // 2
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(gray.shape[0], bottom + margin), min(gray.shape[1], right + margin)
    window, window_factor = shrink(gray[top:bottom, left:right])
    if window_factor > 0.8 * factor:
        return ink  # no more detail to gain
    try:
        found = _segment(window, name)
    except ImageError:
        return ink  # the reduced copy's answer stands
    # The window sees only the digit's surroundings: other digits are counted on the copy.
    return dataclasses.replace(found, digits=max(found.digits, ink.digits))


def check_aspect(width: int, height: int, name: str) -> None:
    """Refuses a picture longer than ``MAX_ASPECT`` times its width (raises ImageError).

    Its working copy could not keep the long side within ``WORK_SIDE`` pixels and the
    short side at least ``MIN_SIDE``, so time and memory would grow with the long side.
    """
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(
            f"{name}: {width}x{height} pixels is a strip, not a digit picture "
            f"(sides more than {MAX_ASPECT}:1 apart)"
        )
