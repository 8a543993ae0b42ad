"""What predict says about a picture: several digits, why no ink, extreme shapes (issue 25/26)."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_research.inference import imaging, recognize
from mnist_research.inference import ink as ink_lib
from mnist_research.inference import photo_conditions as photos
from tests.inference.test_photo_conditions import drawings

INK = (20, 20, 20)


def _page(width=400, height=300):
    return Image.new("RGB", (width, height), (235, 235, 228))


def _four(draw, dx=0):
    draw.line([(100 + dx, 60), (60 + dx, 170), (150 + dx, 170)], fill=INK, width=12)
    draw.line([(130 + dx, 100), (130 + dx, 240)], fill=INK, width=12)


def _two(draw, dx=0):
    draw.arc((200 + dx, 60, 300 + dx, 150), 180, 30, fill=INK, width=12)
    draw.line([(295 + dx, 120), (200 + dx, 240), (310 + dx, 240)], fill=INK, width=12)


def _gray(image):
    return np.asarray(image.convert("L"), np.float32)


def test_several_digits_are_counted_and_one_digit_is_not():
    both = _page()
    _four(ImageDraw.Draw(both))
    _two(ImageDraw.Draw(both))
    found = imaging.preprocess(_gray(both), "42")
    assert found.digits == 2 and found.warning.startswith("2 digit-sized ink regions")
    three = _page(560)
    _four(ImageDraw.Draw(three))
    _two(ImageDraw.Draw(three))
    _four(ImageDraw.Draw(three), dx=330)
    assert imaging.preprocess(_gray(three), "424").digits == 3
    alone = _page()
    _four(ImageDraw.Draw(alone))
    found = imaging.preprocess(_gray(alone), "4")
    assert found.digits == 1 and found.warning == ""


def test_predict_results_carry_the_warning(tmp_path):
    both = _page()
    _four(ImageDraw.Draw(both))
    _two(ImageDraw.Draw(both))
    alone = _page()
    _two(ImageDraw.Draw(alone))
    paths = [str(tmp_path / "42.png"), str(tmp_path / "2.png")]
    both.save(paths[0])
    alone.save(paths[1])
    results = recognize.classify(paths, lambda images: np.zeros((len(images), 10)))
    assert results[0]["digits"] == 2
    assert results[0]["warning"].startswith(f"{paths[0]}: 2 digit-sized ink regions")
    assert "warning" not in results[1] and "digits" not in results[1]


def test_no_ink_says_blank_page_or_not_separable():
    with pytest.raises(imaging.ImageError, match="no ink found: a blank page"):
        imaging.preprocess(np.full((200, 300), 230.0), "blank")
    with pytest.raises(imaging.ImageError, match="no ink found: a blank page"):
        imaging.preprocess(200 + np.random.default_rng(1).normal(0, 20, (300, 400)), "grain")
    # A soft shadow (a fold) 35 grey levels deep: contrast enough for ink, yet no part of
    # it is a stroke 32 levels above the paper on average.
    cols = np.arange(320)[None, :]
    fold = np.broadcast_to(220 - 35 * np.exp(-((cols - 160) ** 2) / 288.0), (240, 320))
    with pytest.raises(imaging.ImageError, match="ink is not separable from the background"):
        imaging.preprocess(fold, "fold")
    fold = fold.copy()
    fold[60:180, 100:110] = 30.0  # with a stroke on it, the stroke is found
    assert imaging.preprocess(fold, "fold").image.max() > 200


@pytest.mark.parametrize("size", [(8, 6_000_000), (40, 1_200_000), (6_000_000, 8)])
def test_extreme_aspect_is_refused_in_one_line_and_others_still_classified(tmp_path, size):
    width, height = size
    strip = tmp_path / "strip.png"
    Image.new("L", (width, height), 255).save(strip, optimize=False)
    good = tmp_path / "good.png"
    page = _page()
    _four(ImageDraw.Draw(page))
    page.save(good)
    results = recognize.classify(
        [str(strip), str(good)], lambda images: np.eye(10)[[4] * len(images)]
    )
    assert results[0]["error"] == (
        f"{strip}: {width}x{height} pixels is a strip, not a digit "
        f"picture (sides more than 40:1 apart)"
    )
    assert results[1]["digit"] == 4


def test_strips_up_to_the_limit_are_read_in_bounded_work():
    page = np.full((40, 1600), 230.0, np.float32)  # 40:1, the most allowed
    page[8:32, 700:712] = 20.0
    image = imaging.preprocess(page, "strip").image  # a vertical bar, fitted to 20 px high
    assert image.max() > 200 and (image > 128).any(axis=1).sum() >= 18
    with pytest.raises(imaging.ImageError, match="is a strip"):
        imaging.preprocess(np.full((40, 1641), 230.0), "longer")


def test_a_tiny_enlarged_scan_is_dark_ink_found_whole():
    """A digit scanned at 8x8 and enlarged x2 (bicubic): a 16-pixel picture whose strokes
    are 1-3 px of grey, mostly anti-aliasing, and whose ink covers one side. Its ink is
    dark (the least-squares lighting plane there is the ink's tilt) and the box holds all
    of it, not a fragment."""
    images, labels = drawings(10, seed=5)
    framing = photos.Framing("lowres", side=8, scale=2)
    wrong = []
    for digit, label in zip(images, labels):
        gray = imaging.decode(io.BytesIO(photos.render_framing(digit, framing, None)), "tiny")
        assert gray.shape == (16, 16)
        dark = gray < (gray.min() + gray.max()) / 2  # the strokes' cores
        rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
        try:
            top, bottom, left, right = ink_lib.find_ink(gray, "tiny").box
        except imaging.ImageError as e:
            wrong.append((int(label), str(e)))
            continue
        if not (
            ink_lib.ink_is_dark(gray)
            and top <= rows[0]
            and bottom > rows[-1]
            and left <= cols[0]
            and right > cols[-1]
        ):
            wrong.append(
                (
                    int(label),
                    (top, bottom, left, right),
                    (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1),
                )
            )
    assert not wrong, f"{len(wrong)} of {len(images)} not found whole: {wrong}"


def test_a_low_resolution_scan_has_no_halo_around_its_strokes():
    """MNIST's pen is narrower than a pixel of an 8x8 scan, so each stroke is recorded as
    partial grey over a whole pixel; enlarged into the 20x20 box that is a faint halo,
    2.5 px wide, filling loops. The preprocessing sharpens such soft edges: the digit's
    faint ink (above 30 grey levels) covers little more than the same digit's from a sharp
    picture (1.36-1.38 times as much without the sharpening, 1.21-1.23 with it)."""
    images, _ = drawings(2, seed=3)

    def faint_ink(digit, framing):
        picture = io.BytesIO(photos.render_framing(digit, framing, None))
        return (imaging.to_mnist(imaging.decode(picture, "scan")) > 30).sum()

    sharp = [faint_ink(digit, photos.Framing("tight", side=96)) for digit in images]
    for scale in (2, 4, 8):
        scan = photos.Framing("lowres", side=8, scale=scale)
        ratios = [faint_ink(digit, scan) / ink for digit, ink in zip(images, sharp)]
        assert np.mean(ratios) < 1.3, f"x{scale}: {np.mean(ratios):.2f} times the sharp ink"
