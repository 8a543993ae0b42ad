"""Rendering MNIST digits as a camera or scanner would see them.

A 28×28 digit (light on black, as MNIST stores it) becomes the ink of a
picture: enlarged to a random size, rotated, placed off-centre on paper with a
texture and a tint, written in a coloured ink, lit unevenly, warped in
perspective, defocused, given sensor noise and encoded as PNG or JPEG. Each
:class:`Capture` names one such condition. A :class:`Framing` is the other way
people give a digit: cropped to its ink (tight, a canvas it fills edge to edge,
flush against a border) or scanned at a low resolution and enlarged.
:data:`CONDITIONS` is the set the robustness measurement
(``inference/robustness.py``) reports on. Rendering is deterministic for a
given ``numpy.random.Generator`` state.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image, ImageFilter

from mnist_research.inference import ink as ink_lib

RGB = tuple[int, int, int]
WHITE_PAPER: RGB = (222, 220, 214)
BLACK_INK: RGB = (28, 28, 34)
TINTED_PAPERS: tuple[RGB, ...] = (
    (226, 214, 170),
    (190, 205, 225),
    (165, 165, 160),
    (232, 200, 205),
)
COLOURED_INKS: tuple[RGB, ...] = ((30, 50, 150), (150, 30, 35), (95, 95, 100), (20, 90, 40))


@dataclasses.dataclass(frozen=True)
class Capture:
    """How one picture of a digit is taken; the defaults are a clean scan saved as PNG.

    Attributes:
      field: (min, max) side in pixels of the enlarged 28×28 digit field.
      page: (width, height) of the picture in pixels.
      papers: paper colours to draw from. inks: ink colours to draw from.
      texture: paper texture amplitude in grey levels (blotches plus grain).
      lighting: the paper's brightness changes by ± this many grey levels across
        the page (multiplicative, like light falling off; random direction).
      rotation: the digit is rotated by up to ± this many degrees.
      perspective: page corners move by up to this fraction of the page size.
      blur: Gaussian defocus, standard deviation in pixels.
      noise: sensor noise, standard deviation in grey levels of the luminance.
      jpeg: JPEG quality; ``None`` saves a PNG.
    """

    field: tuple[int, int] = (84, 196)
    page: tuple[int, int] = (320, 240)
    papers: tuple[RGB, ...] = (WHITE_PAPER,)
    inks: tuple[RGB, ...] = (BLACK_INK,)
    texture: float = 0.0
    lighting: float = 0.0
    rotation: float = 0.0
    perspective: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    jpeg: int | None = None


@dataclasses.dataclass(frozen=True)
class Framing:
    """A digit cropped to its ink and framed the way a person crops or draws it.

    The digit's ink box (pixels above ``INK_LEVEL``) is cut out of the 28×28
    field; dark ink on white paper, saved as PNG.

    Attributes:
      kind: ``"tight"``: enlarged (bicubic) so its height is ``side`` px, aspect
        kept, ``margin`` px of paper around. ``"fill"``: enlarged so its long side
        spans a ``side``×``side`` canvas edge to edge, aspect kept. ``"stretch"``:
        enlarged to ``side``×``side`` (the aspect ratio is lost). ``"lowres"``:
        fitted into a ``side``×``side`` grid (area averaging, the long side
        touching two borders, like a low-resolution scan), then enlarged
        ``scale``× (bicubic). ``"border"``: enlarged to ``side`` px high on a
        ``page`` whose border one side of the ink touches (random side).
      side, margin, scale, page: see ``kind``.
    """

    kind: str
    side: int = 64
    margin: int = 0
    scale: int = 1
    page: tuple[int, int] = (200, 160)
    jpeg: int | None = None  # always PNG; the attribute lets callers name the format


INK_LEVEL = 32  # of 255: MNIST pixels above this are the digit's ink box
PLAIN = Capture()
CONDITIONS: dict[str, Capture | Framing] = {
    "plain scan (PNG)": PLAIN,
    "sensor noise σ=10": Capture(noise=10),
    "sensor noise σ=20": Capture(noise=20),
    "sensor noise σ=30": Capture(noise=30),
    "lighting gradient ±30": Capture(lighting=30),
    "lighting gradient ±60": Capture(lighting=60),
    "lighting gradient ±90": Capture(lighting=90),
    "JPEG quality 75": Capture(jpeg=75),
    "JPEG quality 50": Capture(jpeg=50),
    "JPEG quality 25": Capture(jpeg=25),
    "rotation ±5°": Capture(rotation=5),
    "rotation ±10°": Capture(rotation=10),
    "rotation ±15°": Capture(rotation=15),
    "perspective 8 %": Capture(perspective=0.08),
    "defocus blur σ=1.5 px": Capture(blur=1.5),
    "defocus blur σ=3 px": Capture(blur=3.0),
    "tinted paper, coloured ink": Capture(papers=TINTED_PAPERS, inks=COLOURED_INKS),
    "paper texture ±12": Capture(texture=12),
    "small (20-34 px digits in 640×480)": Capture(field=(28, 48), page=(640, 480)),
    "large, off-centre (640×480)": Capture(field=(250, 420), page=(640, 480)),
    "phone photo (all at once)": Capture(
        field=(70, 220),
        page=(480, 360),
        papers=TINTED_PAPERS + (WHITE_PAPER,),
        inks=COLOURED_INKS + (BLACK_INK,),
        texture=6,
        lighting=40,
        rotation=6,
        perspective=0.05,
        blur=1.0,
        noise=10,
        jpeg=70,
    ),
    "tight crop (96 px high, 2 px margin)": Framing("tight", side=96, margin=2),
    "filled canvas (64×64, edge to edge)": Framing("fill", side=64),
    "touching a border (100 px high)": Framing("border", side=100),
    "low-res 16×16 enlarged ×2": Framing("lowres", side=16, scale=2),
    "low-res 16×16 enlarged ×4": Framing("lowres", side=16, scale=4),
    "low-res 16×16 enlarged ×8": Framing("lowres", side=16, scale=8),
    "low-res 8×8 enlarged ×2": Framing("lowres", side=8, scale=2),
    "low-res 8×8 enlarged ×4": Framing("lowres", side=8, scale=4),
    "low-res 8×8 enlarged ×8": Framing("lowres", side=8, scale=8),
    "stretched to fill 64×64 (aspect lost)": Framing("stretch", side=64),
}


def ink_crop(digit: np.ndarray) -> np.ndarray:
    """The part of a 28×28 uint8 digit inside its ink box (the whole field if it has none)."""
    digit = np.asarray(digit, np.uint8)
    rows = np.flatnonzero(digit.max(axis=1) > INK_LEVEL)
    cols = np.flatnonzero(digit.max(axis=0) > INK_LEVEL)
    if rows.size == 0:
        return digit
    return digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit(height: int, width: int, side: int) -> tuple[int, int]:
    """(width, height) of a ``height``×``width`` box scaled so its long side is ``side``."""
    scale = side / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _on_paper(coverage: np.ndarray) -> bytes:
    """Dark ink (``coverage`` 0..255) on white paper, encoded as PNG."""
    paper, ink = np.float32(WHITE_PAPER[0]), np.float32(BLACK_INK[0])
    page = paper + (ink - paper) * np.asarray(coverage, np.float32) / 255.0
    buffer = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def render_framing(digit: np.ndarray, framing: Framing, rng: np.random.Generator) -> bytes:
    """Renders one 28×28 uint8 digit as ``framing`` says; returns the PNG file."""
    crop = Image.fromarray(ink_crop(digit))
    height, width = crop.height, crop.width
    bicubic = Image.Resampling.BICUBIC
    if framing.kind == "stretch":
        return _on_paper(np.asarray(crop.resize((framing.side, framing.side), bicubic)))
    if framing.kind in ("fill", "lowres"):
        size = _fit(height, width, framing.side)
        resample = Image.Resampling.BOX if framing.kind == "lowres" else bicubic
        canvas = Image.new("L", (framing.side, framing.side), 0)
        canvas.paste(
            crop.resize(size, resample),
            ((framing.side - size[0]) // 2, (framing.side - size[1]) // 2),
        )
        if framing.kind == "lowres":
            big = framing.side * framing.scale
            canvas = canvas.resize((big, big), bicubic)
        return _on_paper(np.asarray(canvas))
    size = (max(1, round(width * framing.side / height)), framing.side)
    ink = np.asarray(crop.resize(size, bicubic))
    if framing.kind == "tight":
        return _on_paper(np.pad(ink, framing.margin))
    if framing.kind == "border":
        page_w, page_h = max(framing.page[0], size[0]), framing.page[1]
        canvas = np.zeros((page_h, page_w), np.uint8)
        side = int(rng.integers(4))  # 0 top, 1 bottom, 2 left, 3 right
        top = {0: 0, 1: page_h - size[1]}.get(side, int(rng.integers(0, page_h - size[1] + 1)))
        left = {2: 0, 3: page_w - size[0]}.get(side, int(rng.integers(0, page_w - size[0] + 1)))
        canvas[top : top + size[1], left : left + size[0]] = ink
        return _on_paper(canvas)
    raise ValueError(f"unknown framing {framing.kind!r}")


def _ink_alpha(digit: np.ndarray, side: int, angle: float) -> Image.Image:
    """The digit's coverage (0..255) enlarged to ``side`` pixels and rotated by ``angle``."""
    alpha = Image.fromarray(np.asarray(digit, np.uint8)).resize(
        (side, side), Image.Resampling.BICUBIC
    )
    return alpha.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)


def _paper(capture: Capture, rng: np.random.Generator, colour: RGB) -> np.ndarray:
    """A float ``[H, W, 3]`` sheet of paper of ``colour`` with the capture's texture."""
    width, height = capture.page
    sheet = np.empty((height, width, 3), np.float32)
    sheet[:] = colour
    if capture.texture:
        blotches = Image.fromarray(
            rng.normal(0, 1, (height // 24 + 2, width // 24 + 2)).astype(np.float32)
        ).resize((width, height), Image.Resampling.BICUBIC)
        grain = ink_lib.gaussian_blur(rng.normal(0, 1, (height, width)), 0.8)
        pattern = 0.7 * np.asarray(blotches) + 1.5 * grain
        sheet += (capture.texture / 2.0) * pattern[..., None]
    return sheet


def _perspective_coefficients(size: tuple[int, int], shift: np.ndarray) -> list[float]:
    """Coefficients for ``Image.transform(PERSPECTIVE)`` moving each corner by ``shift``."""
    width, height = size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    moved = corners + shift
    rows = []
    for (x, y), (u, v) in zip(corners, moved):  # output pixel (x, y) reads input (u, v)
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return np.linalg.solve(np.array(rows), moved.reshape(-1)).tolist()


def _lighting(capture: Capture, rng: np.random.Generator, paper_level: float) -> np.ndarray:
    """A multiplicative ``[H, W, 1]`` illumination: the paper varies by ±``lighting``."""
    width, height = capture.page
    theta = rng.uniform(0, 2 * np.pi)
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    ramp = xs * np.float32(np.cos(theta)) + ys * np.float32(np.sin(theta))
    ramp /= max(float(np.abs(ramp).max()), 1e-6)  # -1 .. 1 across the page
    return (1.0 + ramp * capture.lighting / paper_level)[..., None]


def render(digit: np.ndarray, capture: Capture | Framing, rng: np.random.Generator) -> bytes:
    """Renders one 28×28 uint8 digit under ``capture``; returns the encoded PNG or JPEG file."""
    if isinstance(capture, Framing):
        return render_framing(digit, capture, rng)
    width, height = capture.page
    paper = np.array(capture.papers[rng.integers(len(capture.papers))], np.float32)
    ink = np.array(capture.inks[rng.integers(len(capture.inks))], np.float32)
    angle = rng.uniform(-capture.rotation, capture.rotation)
    alpha = _ink_alpha(digit, int(rng.integers(capture.field[0], capture.field[1] + 1)), angle)
    margin_x, margin_y = (round(capture.perspective * side) for side in (width, height))
    left = int(rng.integers(margin_x, max(margin_x + 1, width - margin_x - alpha.width + 1)))
    top = int(rng.integers(margin_y, max(margin_y + 1, height - margin_y - alpha.height + 1)))
    coverage = np.asarray(alpha, np.float32)[: height - top, : width - left, None] / 255.0
    page = _paper(capture, rng, tuple(paper))
    region = page[top : top + coverage.shape[0], left : left + coverage.shape[1]]
    region += (ink - region) * coverage  # ink laid over the paper where the digit is
    if capture.lighting:
        page *= _lighting(capture, rng, float(paper.mean()))
    picture = Image.fromarray(np.clip(page, 0, 255).round().astype(np.uint8), "RGB")
    if capture.perspective:
        # Corners move inwards only: the camera sees paper everywhere, as in a close-up.
        inwards = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])
        shift = (
            inwards * rng.uniform(0, 1, (4, 2)) * capture.perspective * np.array([width, height])
        )
        picture = picture.transform(
            picture.size,
            Image.Transform.PERSPECTIVE,
            _perspective_coefficients(picture.size, shift),
            resample=Image.Resampling.BICUBIC,
        )
    if capture.blur:
        picture = picture.filter(ImageFilter.GaussianBlur(capture.blur))
    if capture.noise:
        noisy = np.asarray(picture, np.float32) + rng.normal(
            0, capture.noise, (height, width, 1)
        ).astype(np.float32)
        picture = Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    if capture.jpeg is None:
        picture.save(buffer, format="PNG", compress_level=1)
    else:
        picture.save(buffer, format="JPEG", quality=capture.jpeg)
    return buffer.getvalue()
