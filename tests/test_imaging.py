"""MNIST-style preprocessing of user images: geometry, formats and bad files."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_research.inference import imaging

# A re-rendered digit may differ from the original by resampling twice (up, then down to
# 20x20) and by JPEG artefacts. Tolerances, in 0-255 grey levels and pixels:
MEAN_ABS_TOL = 0.06 * 255   # mean |difference| over the 28x28 image (measured: 4-7.5)
CENTER_TOL = 0.25           # centre of mass, pixels (measured: < 0.01)


def mnist_style_digit(kind: str = "zero") -> np.ndarray:
    """A 28x28 uint8 digit, white on black, fitted to 20x20 and centred by mass."""
    big = Image.new("L", (160, 160), 0)
    draw = ImageDraw.Draw(big)
    if kind == "zero":
        draw.ellipse((30, 0, 130, 159), outline=255, width=22)
    else:  # a seven
        draw.line((10, 12, 150, 12), fill=255, width=22)
        draw.line((150, 12, 60, 159), fill=255, width=22)
    return imaging.to_mnist(np.asarray(big, np.float32))


def render_on_paper(digit: np.ndarray, fmt: str, scale: int = 6, offset=(120, 14)) -> bytes:
    """Scaled up, dark ink on light paper, off-centre in a 300x200 canvas."""
    up = Image.fromarray(255 - digit).resize((28 * scale, 28 * scale), Image.BILINEAR)
    canvas = Image.new("L", (300, 200), 235)
    canvas.paste(up, offset)
    buffer = io.BytesIO()
    canvas.convert("RGB").save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def test_reference_digit_is_mnist_shaped():
    digit = mnist_style_digit()
    rows = np.flatnonzero(digit.max(axis=1) > 0)
    cols = np.flatnonzero(digit.max(axis=0) > 0)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)
    row, col = imaging.center_of_mass(digit.astype(np.float64))
    assert abs(row - 13.5) <= 0.5 and abs(col - 13.5) <= 0.5


@pytest.mark.parametrize("kind", ["zero", "seven"])
@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"),
                                        ("GIF", ".gif")])
def test_rerendered_digit_comes_back_close(tmp_path, kind, fmt, suffix):
    original = mnist_style_digit(kind)
    path = tmp_path / f"digit{suffix}"
    path.write_bytes(render_on_paper(original, fmt))
    recovered = imaging.load_digit(str(path))
    assert recovered.shape == (28, 28) and recovered.dtype == np.uint8
    diff = np.abs(recovered.astype(float) - original.astype(float)).mean()
    assert diff < MEAN_ABS_TOL, f"mean |diff| {diff:.1f} grey levels"
    for a, b in zip(imaging.center_of_mass(recovered.astype(float)),
                    imaging.center_of_mass(original.astype(float))):
        assert abs(a - b) <= CENTER_TOL


def test_light_ink_on_dark_is_not_inverted(tmp_path):
    original = mnist_style_digit("seven")
    up = Image.fromarray(original).resize((112, 112), Image.BILINEAR)
    canvas = Image.new("L", (200, 300), 0)
    canvas.paste(up, (10, 20))
    path = tmp_path / "dark.png"
    canvas.save(path)
    recovered = imaging.load_digit(str(path))
    assert np.abs(recovered.astype(float) - original).mean() < MEAN_ABS_TOL


def test_transparent_png_is_composited_on_white(tmp_path):
    original = mnist_style_digit("zero")
    alpha = Image.fromarray(original).resize((84, 84), Image.BILINEAR)
    rgba = Image.new("RGBA", (84, 84), (0, 0, 0, 0))
    rgba.putalpha(alpha)  # black ink where alpha is high, transparent elsewhere
    path = tmp_path / "ink.png"
    rgba.save(path)
    recovered = imaging.load_digit(str(path))
    assert np.abs(recovered.astype(float) - original).mean() < MEAN_ABS_TOL


def _png(tmp_path, array, name="x.png"):
    path = tmp_path / name
    Image.fromarray(array).save(path)
    return path


def _write(path, payload):
    if isinstance(payload, str):
        path.write_text(payload)
    else:
        path.write_bytes(payload)
    return path


BAD_INPUTS = {
    "missing": (lambda p: p / "nope.png", "no such file"),
    "empty": (lambda p: _write(p / "empty.png", b""), "empty file"),
    "not an image": (lambda p: _write(p / "notes.png", "hello, not pixels"), "not an image"),
    "truncated": (lambda p: _write(p / "cut.png",
                                   render_on_paper(mnist_style_digit(), "PNG")[:300]),
                  "truncated or corrupt"),
    "blank": (lambda p: _png(p, np.full((50, 60), 240, np.uint8), "blank.png"), "no ink"),
    "huge": (lambda p: _png(p, np.zeros((8000, 8000), np.uint8), "huge.png"),
             "larger than"),
    "unsupported format": (lambda p: (Image.fromarray(np.zeros((30, 30), np.uint8)).save(
        p / "x.tiff") or p / "x.tiff"), "not supported"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_raise_image_error(tmp_path, case):
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(imaging.ImageError, match=message) as info:
        imaging.load_digit(str(path))
    assert str(path) in str(info.value)
