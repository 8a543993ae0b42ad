"""Turning a photo or scan of a handwritten digit into an MNIST-style 28×28 image.

MNIST's own recipe (LeCun et al.): the digit's bounding box is scaled to fit a
20×20 box keeping its aspect ratio (anti-aliased, hence grey levels), then the
result is placed in a 28×28 field so that its centre of mass is at the centre.
MNIST digits are light ink on black; a scan is usually dark ink on light paper,
so the image is inverted when its border (the background) is light.

Decoding uses Pillow, which reads PNG, JPEG, BMP and GIF and guards against
decompression bombs; the decoded size is capped at ``MAX_PIXELS``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from mnist_research.errors import MnistResearchError

FORMATS = ("PNG", "JPEG", "BMP", "GIF")
MAX_PIXELS = 50_000_000  # ~7000×7000: far beyond any scan of one digit.
BOX = 20
SIZE = 28


class ImageError(MnistResearchError):
    """An input image that cannot be read or holds no digit."""


def load_grayscale(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decodes ``path`` into a float32 ``[H, W]`` array in [0, 255].

    Transparent areas are composited onto white (as the image would look on
    screen). Animated GIFs use their first frame.

    Raises:
      ImageError: a missing, empty, non-image, truncated, unsupported or too
        large file (the message says which).
    """
    if not os.path.isfile(path):
        raise ImageError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format not in FORMATS:
                    raise ImageError(f"{path}: {image.format} images are not supported "
                                     f"(use {', '.join(FORMATS)})")
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(f"{path}: {width}x{height} pixels is larger than the "
                                     f"{max_pixels:,}-pixel limit")
                image.seek(0)
                image.load()
                if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                    rgba = image.convert("RGBA")
                    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    image = Image.alpha_composite(white, rgba)
                return np.asarray(image.convert("L"), dtype=np.float32)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: image too large to decode safely") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: truncated or corrupt image ({e})") from None


def to_mnist(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """MNIST-style preprocessing of a grayscale ``[H, W]`` array; returns uint8 ``[28, 28]``.

    Steps: invert when the background is light; subtract the background level
    and drop faint noise; crop to the ink's bounding box; scale to fit 20×20
    keeping the aspect ratio; stretch to full contrast; paste into 28×28 and
    translate (sub-pixel, bilinear) so the centre of mass is at the centre.

    Raises:
      ImageError: no ink (a blank or nearly uniform image).
    """
    gray = np.asarray(gray, np.float32)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = 255.0 - gray if np.median(border) > 127 else gray.copy()
    ink = np.clip(ink - np.median(ink), 0.0, None)
    peak = float(ink.max()) if ink.size else 0.0
    if peak < 32.0:
        raise ImageError(f"{name}: no ink found (blank or nearly uniform image)")
    ink[ink < 0.15 * peak] = 0.0
    rows = np.flatnonzero(ink.max(axis=1))
    cols = np.flatnonzero(ink.max(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    height, width = crop.shape
    scale = BOX / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.asarray(Image.fromarray(crop).resize(new_size, Image.Resampling.LANCZOS),
                         dtype=np.float32)
    resized = np.clip(resized, 0.0, None)
    resized *= 255.0 / max(float(resized.max()), 1e-6)

    canvas = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - new_size[1]) // 2, (SIZE - new_size[0]) // 2
    canvas[top:top + new_size[1], left:left + new_size[0]] = resized
    return center_of_mass_shift(canvas).round().clip(0, 255).astype(np.uint8)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted centre."""
    total = float(image.sum())
    rows, cols = np.indices(image.shape)
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def center_of_mass_shift(image: np.ndarray) -> np.ndarray:
    """Translates ``image`` (bilinear, sub-pixel) so its centre of mass is at the centre."""
    row, col = center_of_mass(image)
    d_row = (image.shape[0] - 1) / 2 - row
    d_col = (image.shape[1] - 1) / 2 - col
    shifted = Image.fromarray(np.asarray(image, np.float32)).transform(
        (image.shape[1], image.shape[0]), Image.Transform.AFFINE,
        (1, 0, -d_col, 0, 1, -d_row), resample=Image.Resampling.BILINEAR, fillcolor=0.0)
    return np.asarray(shifted, np.float32)


def load_digit(path: str) -> np.ndarray:
    """``path`` → uint8 ``[28, 28]`` ready for the model (raises ImageError)."""
    return to_mnist(load_grayscale(path), path)
