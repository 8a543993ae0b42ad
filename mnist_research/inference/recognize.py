"""Classifying image files with a loaded model (library part of ``predict``)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable

import numpy as np
from PIL import Image, PngImagePlugin

from mnist_research import files, output_files
from mnist_research.analysis import metrics as evaluation
from mnist_research.inference import imaging

# A PNG text chunk every preprocessed image carries: an existing file without it is the user's.
_MARK = ("Software", "mnist_research predict")


def output_names(paths: list[str]) -> list[str]:
    """``<stem>.28x28.png`` for each input; ``<stem>-2``, ``-3``, ... when stems repeat.

    Inputs from different folders (``x/same.png``, ``y/same.png``) or with
    different extensions (``a.png``, ``a.jpg``) get distinct names.
    """
    used, names = set(), []
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        candidate, n = stem, 1
        while candidate in used:
            n += 1
            candidate = f"{stem}-{n}"
        used.add(candidate)
        names.append(candidate + ".28x28.png")
    return names


def save_preprocessed(folder: str, name: str, image: np.ndarray) -> str:
    """Writes the 28×28 image the model saw as ``<folder>/<name>``; returns its path."""
    buffer = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text(*_MARK)
    Image.fromarray(image).save(buffer, format="PNG", pnginfo=info)
    out = os.path.join(folder, name)
    files.atomic_write_bytes(out, buffer.getvalue())
    return out


def _ours(path: str) -> bool:
    """Whether ``path`` is a preprocessed image this module wrote (its tEXt chunk, before IDAT)."""
    return output_files.starts_with_mark(path, b"tEXt" + "\0".join(_MARK).encode())


def classify(
    paths: list[str], logits_fn: Callable[[np.ndarray], np.ndarray], save_dir: str | None = None
) -> list[dict]:
    """One result dict per path: ``digit``, ``probability``, ``top3`` or ``error``.

    A picture holding several digit-sized ink regions also gets ``digits`` (how
    many) and ``warning`` (one line saying so).

    Raises:
      FileExistsError: a file of ``save_dir`` would replace an input or a
        file this module did not write (checked before anything is written).
    """
    names = output_names(paths)
    if save_dir:
        output_files.check_outputs([os.path.join(save_dir, n) for n in names], paths, _ours)
    results, images, ok = [], [], []
    for path, name in zip(paths, names):
        try:
            found = imaging.load(path)
        except imaging.ImageError as e:
            results.append({"path": path, "error": str(e)})
            continue
        except MemoryError:  # whatever the cause, the other files are still classified
            results.append({"path": path, "error": f"{path}: out of memory while decoding"})
            continue
        image = found.image
        result = {"path": path}
        if found.warning:
            result.update(digits=found.digits, warning=f"{path}: {found.warning}")
        if save_dir:
            result["preprocessed"] = save_preprocessed(save_dir, name, image)
        results.append(result)
        images.append(image)
        ok.append(result)
    if images:
        probabilities = evaluation.softmax(logits_fn(np.stack(images)))
        for result, probs in zip(ok, probabilities):
            top = np.argsort(-probs)[:3]
            result.update(
                digit=int(top[0]),
                probability=float(probs[top[0]]),
                top3=[[int(d), float(probs[d])] for d in top],
            )
    return results
