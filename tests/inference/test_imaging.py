"""MNIST-style preprocessing of user images: geometry, formats and bad files."""

import io
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_research.inference import imaging

# A re-rendered digit may differ from the original by resampling twice (up, then down to
# 20x20) and by JPEG artefacts. Tolerances, in 0-255 grey levels and pixels:
MEAN_ABS_TOL = 0.06 * 255  # mean |difference| over the 28x28 image (measured: 4-7.5)
CENTER_TOL = 0.25  # centre of mass, pixels (measured: < 0.01)


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
@pytest.mark.parametrize(
    "fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("GIF", ".gif")]
)
def test_rerendered_digit_comes_back_close(tmp_path, kind, fmt, suffix):
    original = mnist_style_digit(kind)
    path = tmp_path / f"digit{suffix}"
    path.write_bytes(render_on_paper(original, fmt))
    recovered = imaging.load_digit(str(path))
    assert recovered.shape == (28, 28) and recovered.dtype == np.uint8
    diff = np.abs(recovered.astype(float) - original.astype(float)).mean()
    assert diff < MEAN_ABS_TOL, f"mean |diff| {diff:.1f} grey levels"
    for a, b in zip(
        imaging.center_of_mass(recovered.astype(float)),
        imaging.center_of_mass(original.astype(float)),
    ):
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
    "truncated": (
        lambda p: _write(p / "cut.png", render_on_paper(mnist_style_digit(), "PNG")[:300]),
        "truncated or corrupt",
    ),
    "blank": (lambda p: _png(p, np.full((50, 60), 240, np.uint8), "blank.png"), "no ink"),
    "huge": (lambda p: _png(p, np.zeros((8000, 8000), np.uint8), "huge.png"), "larger than"),
    "a directory": (lambda p: (p / "digits").mkdir() or p / "digits", "a directory"),
    "unsupported format": (
        lambda p: Image.fromarray(np.zeros((30, 30), np.uint8)).save(p / "x.tiff") or p / "x.tiff",
        "not supported",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_raise_image_error(tmp_path, case):
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(imaging.ImageError, match=message) as info:
        imaging.load_digit(str(path))
    assert str(path) in str(info.value)


# Pictures as a camera, scanner or phone delivers them (issue: digits from the real world).


def photo_of(
    digit: np.ndarray, size=(600, 600), field=420, offset=(90, 60), paper=230.0, ink=30.0
) -> np.ndarray:
    """A float [H, W] grey picture: ``digit`` enlarged to ``field`` px, dark ink on paper."""
    alpha = (
        np.asarray(Image.fromarray(digit).resize((field, field), Image.BICUBIC), np.float32) / 255.0
    )
    page = np.full((size[1], size[0]), paper, np.float32)
    left, top = offset
    region = page[top : top + field, left : left + field]
    region += (ink - region) * alpha
    return page


def saved(tmp_path, page: np.ndarray, name: str, **options) -> str:
    path = tmp_path / name
    Image.fromarray(np.clip(page, 0, 255).round().astype(np.uint8)).save(path, **options)
    return str(path)


def assert_close(recovered: np.ndarray, original: np.ndarray, tol=MEAN_ABS_TOL):
    diff = np.abs(recovered.astype(float) - original.astype(float)).mean()
    assert diff < tol, f"mean |diff| {diff:.1f} grey levels"
    for a, b in zip(
        imaging.center_of_mass(recovered.astype(float)),
        imaging.center_of_mass(original.astype(float)),
    ):
        assert abs(a - b) <= 2 * CENTER_TOL


@pytest.mark.parametrize("sigma", [8, 20])
def test_sensor_noise_does_not_become_ink(tmp_path, sigma):
    original = mnist_style_digit("zero")
    page = photo_of(original) + np.random.default_rng(sigma).normal(0, sigma, (600, 600))
    assert_close(imaging.load_digit(saved(tmp_path, page, "noisy.jpg", quality=90)), original)


@pytest.mark.parametrize("amplitude", [30, 60])
def test_lighting_gradient_is_flattened(tmp_path, amplitude):
    original = mnist_style_digit("seven")
    ramp = np.linspace(-amplitude, amplitude, 400, dtype=np.float32)
    page = photo_of(original, size=(400, 300), field=200, offset=(150, 50), paper=180.0)
    page = page * (1 + ramp[None, :] / 180.0)  # light falling off from right to left
    assert_close(imaging.load_digit(saved(tmp_path, page, "lit.png")), original)


def test_specks_and_a_distant_mark_are_ignored(tmp_path):
    original = mnist_style_digit("seven")
    page = photo_of(original, size=(500, 400), field=224, offset=(40, 100))
    rng = np.random.default_rng(0)
    for row, col in rng.integers(0, 400, size=(25, 2)):  # dust: 2x2 dark specks
        page[row : row + 2, 300 + col // 4 : 302 + col // 4] = 60
    page[20:30, 400:480] = 90  # a pencil mark far from the digit
    assert_close(imaging.load_digit(saved(tmp_path, page, "dusty.png")), original)


def test_exif_orientation_is_applied(tmp_path):
    original = mnist_style_digit("seven")
    upright = Image.fromarray(
        photo_of(original, size=(300, 400), field=200, offset=(50, 100)).round().astype(np.uint8)
    )
    stored = upright.transpose(Image.Transpose.ROTATE_270)  # as the phone's sensor saw it
    exif = Image.Exif()
    exif[0x0112] = 8  # orientation 8: turn 90 degrees counter-clockwise to view
    stored.save(tmp_path / "phone.jpg", quality=92, exif=exif.tobytes())
    stored.save(tmp_path / "no_exif.jpg", quality=92)
    assert_close(imaging.load_digit(str(tmp_path / "phone.jpg")), original)
    sideways = imaging.load_digit(str(tmp_path / "no_exif.jpg"))
    assert np.abs(sideways.astype(float) - original).mean() > 2 * MEAN_ABS_TOL


def _sixteen_bit(page):
    # Paper at 60000, ink at 15000 of 65535: both above 255, which an 8-bit clip flattens.
    return Image.fromarray((15000 + (page - 30.0) / 200.0 * 45000).astype(np.uint16))


MODES = {
    "16-bit grey PNG": (_sixteen_bit, "png", {}),
    "palette GIF": (lambda p: Image.fromarray(p.astype(np.uint8)).convert("P"), "gif", {}),
    "bilevel BMP": (lambda p: Image.fromarray(p.astype(np.uint8)).convert("1"), "bmp", {}),
    "CMYK JPEG": (
        lambda p: Image.fromarray(p.astype(np.uint8)).convert("CMYK"),
        "jpg",
        {"quality": 95},
    ),
    "grey+alpha PNG": (lambda p: Image.fromarray(p.astype(np.uint8)).convert("LA"), "png", {}),
    "RGB JPEG": (lambda p: Image.fromarray(p.astype(np.uint8)).convert("RGB"), "jpg", {}),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_image_modes_keep_their_full_range(tmp_path, mode):
    original = mnist_style_digit("zero")
    convert, suffix, options = MODES[mode]
    page = photo_of(original, size=(320, 240), field=196, offset=(60, 20), paper=230.0, ink=30.0)
    path = tmp_path / f"digit.{suffix}"
    convert(page.round()).save(path, **options)
    assert_close(imaging.load_digit(str(path)), original)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.array([[0, 257, 65535, 32896]], np.uint16)).save(path)
    assert imaging.load_grayscale(str(path)).tolist() == [[0.0, 1.0, 255.0, 128.0]]


def test_noisy_blank_page_and_tiny_pictures_are_refused(tmp_path):
    page = 200 + np.random.default_rng(1).normal(0, 20, (300, 400))
    with pytest.raises(imaging.ImageError, match="no ink found"):
        imaging.load_digit(saved(tmp_path, page, "blank.jpg", quality=75))
    with pytest.raises(imaging.ImageError, match="too small"):
        imaging.load_digit(saved(tmp_path, np.zeros((5, 40)), "strip.png"))


def test_preprocessed_names_are_unique(tmp_path):
    from mnist_research.inference import recognize

    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    paths = []
    for folder, kind in (("x", "zero"), ("y", "seven")):
        paths.append(str(tmp_path / folder / "same.png"))
        Image.fromarray(255 - mnist_style_digit(kind)).save(paths[-1])
    paths.append(str(tmp_path / "x" / "same.bmp"))
    Image.fromarray(255 - mnist_style_digit("seven")).save(paths[-1])
    out = tmp_path / "seen"
    out.mkdir()
    results = recognize.classify(paths, lambda images: np.zeros((len(images), 10)), str(out))
    written = [r["preprocessed"] for r in results]
    assert [os.path.basename(p) for p in written] == [
        "same.28x28.png",
        "same-2.28x28.png",
        "same-3.28x28.png",
    ]
    for path, result in zip(paths, results):
        assert np.array_equal(
            np.asarray(Image.open(result["preprocessed"])), imaging.load_digit(path)
        )


def _two_digits(folder):
    """``x.png`` and ``x.28x28.png`` (the name predict would give x.png's output), distinct."""
    paths = [str(folder / "x.png"), str(folder / "x.28x28.png")]
    for path, kind in zip(paths, ("zero", "seven")):
        Image.fromarray(255 - mnist_style_digit(kind)).save(path)
    return paths


def _contents(folder):
    return {p.name: p.is_file() and p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("how", ["same", "link", "hard_link", "not_ours", "link_out", "folder"])
def test_preprocessed_images_never_replace_an_input_or_a_users_file(tmp_path, how):
    from mnist_research.inference import recognize

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    paths = _two_digits(inputs)
    save_dir = {"same": inputs}.get(how, out)
    out.mkdir()
    target = out / "x.28x28.png"
    if how == "link":
        target.symlink_to(paths[1])
    elif how == "hard_link":
        os.link(paths[1], target)
    elif how == "not_ours":
        target.write_bytes(b"the user's own file")
    elif how == "link_out":
        (tmp_path / "elsewhere").write_bytes(b"elsewhere")
        target.symlink_to(tmp_path / "elsewhere")
    elif how == "folder":
        target.mkdir()
    before = {"in": _contents(inputs), "out": _contents(out), "all": sorted(tmp_path.rglob("*"))}
    with pytest.raises(FileExistsError, match="nothing was written") as raised:
        recognize.classify(paths, lambda images: np.zeros((len(images), 10)), str(save_dir))
    assert raised.value.filename == str(save_dir / "x.28x28.png")
    after = {"in": _contents(inputs), "out": _contents(out), "all": sorted(tmp_path.rglob("*"))}
    assert after == before


def test_preprocessed_images_replace_their_own_earlier_versions(tmp_path):
    from mnist_research.inference import recognize

    (tmp_path / "in").mkdir()
    paths = _two_digits(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    for _ in range(2):
        results = recognize.classify(paths, lambda images: np.zeros((len(images), 10)), str(out))
    assert sorted(os.listdir(out)) == ["x.28x28.28x28.png", "x.28x28.png"]
    assert np.array_equal(
        np.asarray(Image.open(results[0]["preprocessed"])), imaging.load_digit(paths[0])
    )
