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

import dataclasses
import os
import struct
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_research import files
from mnist_research.errors import ImageError
from mnist_research.inference import ink as ink_lib

FORMATS = ("PNG", "JPEG", "BMP", "GIF")
MAX_PIXELS = 50_000_000  # ~7000×7000: far beyond any scan of one digit.
BOX = 20
SIZE = 28
# A digit whose edges span more than SOFT_EDGE pixels of the 20x20 box was seen at a low
# resolution (a scan of 8x8 pixels, enlarged or not, has edges one such pixel, 2.5 px of
# the box, wide). MNIST's pen is narrower than such a pixel: each stroke was recorded as
# partial grey spread over a whole pixel, a faint halo that fills loops and joins strokes
# (MNIST's own edges are about 1 px). Levels below SHARPEN[0] of the peak become paper and
# those above SHARPEN[1] full ink. Chosen with predict_robustness --num=300 on a baseline
# run (gates 1.4-1.8 and levels 0.25-0.3, 0.55-0.65 tried): the 8x8 scans gain 4-7 of 300
# digits, no other condition loses one.
SOFT_EDGE = 1.5
SHARPEN = (0.3, 0.6)


def load_grayscale(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decodes the file ``path`` into a float32 ``[H, W]`` array in [0, 255] (see ``decode``).

    Raises:
      ImageError: a missing, empty, non-image, truncated, unsupported or too
        large file (the message says which).
    """
    if os.path.isdir(path):
        raise ImageError(f"{path}: a directory, not an image file")
    try:
        f = files.open_regular(path)  # a FIFO or a device is refused, not waited on
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as e:
        raise ImageError(f"{path}: {e.strerror or e}") from None
    with f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ImageError(f"{path}: empty file")
        return decode(f, path, max_pixels)


def decode(source: BinaryIO, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decodes an open image file into a float32 ``[H, W]`` array in [0, 255].

    The EXIF orientation (phone photos) is applied. Transparent areas are
    composited onto white (as the image would look on screen). 16-bit
    grayscale keeps its full range (65535 → 255). Animated GIFs use their
    first frame. ``name`` is the file's name in error messages.

    Raises:
      ImageError: a non-image, truncated, unsupported or too large file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                if image.format not in FORMATS:
                    raise ImageError(
                        f"{name}: {image.format} images are not supported "
                        f"(use {', '.join(FORMATS)})"
                    )
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{name}: {width}x{height} pixels is larger than the "
                        f"{max_pixels:,}-pixel limit"
                    )
                ink_lib.check_aspect(width, height, name)  # before decoding a long strip
                image.seek(0)
                image.load()
                return _grayscale_array(_upright(image))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: image too large to decode safely") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{name}: truncated or corrupt image ({e})") from None


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says; unchanged if the EXIF is unreadable."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error):
        return image  # a damaged EXIF block should not stop the pixels from being read


def _grayscale_array(image: Image.Image) -> np.ndarray:
    """Luminance of ``image`` as float32 in [0, 255], whatever its mode."""
    if image.mode.startswith("I;16") or image.mode == "I":  # 16-bit: 0..65535 → 0..255
        return np.clip(np.asarray(image, np.float32) / 257.0, 0.0, 255.0)
    if image.mode == "F":  # floats: [0, 1] is scaled to [0, 255]
        gray = np.nan_to_num(np.asarray(image, np.float32))
        return np.clip(gray * 255.0 if gray.max(initial=0.0) <= 1.0 else gray, 0.0, 255.0)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Digit:
    """A preprocessed picture: ``image`` uint8 ``[28, 28]`` for the model, and how many
    digit-sized ink regions the picture held (``digits``; the one with the most ink is
    ``image``)."""

    image: np.ndarray
    digits: int = 1

    @property
    def warning(self) -> str:
        """A one-line warning when the picture held several digits, else ``""``."""
        if self.digits <= 1:
            return ""
        return (
            f"{self.digits} digit-sized ink regions; classified the one with the most "
            f"ink (crop the picture to one digit to choose)"
        )


def to_mnist(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """``preprocess(gray, name).image``: the uint8 ``[28, 28]`` model input."""
    return preprocess(gray, name).image


def preprocess(gray: np.ndarray, name: str = "image") -> Digit:
    """MNIST-style preprocessing of a grayscale ``[H, W]`` array.

    Steps: find the digit's ink (``ink.find_ink``: polarity, flattened
    illumination, denoising, threshold, the digit's connected regions); scale
    its bounding box to fit 20×20 keeping the aspect ratio (anti-aliased, the
    soft stroke edges included); stretch to full contrast, and sharpen a digit seen at
    a low resolution (``SOFT_EDGE``); paste into 28×28 and
    translate (sub-pixel, bilinear) so the centre of mass is at the centre.

    Raises:
      ImageError: no ink (a blank page, or ink not separable from the
        background), or a picture too small or too elongated to hold a digit.
    """
    ink = ink_lib.find_ink(np.asarray(gray, np.float32), name)
    top, bottom, left, right = ink.box
    height, width = bottom - top, right - left
    scale = BOX / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.asarray(
        Image.fromarray(ink.coverage * 255.0).resize(
            new_size, Image.Resampling.LANCZOS, box=(left, top, right, bottom)
        ),
        dtype=np.float32,
    )
    resized = np.clip(resized, 0.0, None)
    resized *= 255.0 / max(float(resized.max()), 1e-6)
    if ink_lib.edge_width(ink.coverage) * scale > SOFT_EDGE:
        low, high = SHARPEN
        resized = np.clip((resized - 255.0 * low) / (high - low), 0.0, 255.0)

    canvas = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - new_size[1]) // 2, (SIZE - new_size[0]) // 2
    canvas[top : top + new_size[1], left : left + new_size[0]] = resized
    image = center_of_mass_shift(canvas).round().clip(0, 255).astype(np.uint8)
    return Digit(image, ink.digits)


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
        (image.shape[1], image.shape[0]),
        Image.Transform.AFFINE,
        (1, 0, -d_col, 0, 1, -d_row),
        resample=Image.Resampling.BILINEAR,
        fillcolor=0.0,
    )
    return np.asarray(shifted, np.float32)


def load_digit(path: str) -> np.ndarray:
    """``path`` → uint8 ``[28, 28]`` ready for the model (raises ImageError)."""
    return load(path).image


def load(path: str) -> Digit:
    """``path`` decoded and preprocessed (raises ImageError)."""
    return preprocess(load_grayscale(path), path)
