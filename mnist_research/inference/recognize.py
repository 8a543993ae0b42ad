"""Classifying image files with a loaded model (library part of ``predict``)."""

from __future__ import annotations

import io
import os
from typing import Callable, Optional

import numpy as np
from PIL import Image

from mnist_research.analysis import metrics as evaluation
from mnist_research.files import atomic_write_bytes
from mnist_research.inference import imaging


def save_preprocessed(folder: str, path: str, image: np.ndarray) -> str:
    """Writes the 28×28 image the model saw as ``<folder>/<name>.28x28.png``."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    out = os.path.join(folder, os.path.splitext(os.path.basename(path))[0] + ".28x28.png")
    atomic_write_bytes(out, buffer.getvalue())
    return out


def classify(paths: list[str], logits_fn: Callable[[np.ndarray], np.ndarray],
             save_dir: Optional[str] = None) -> list[dict]:
    """One result dict per path: ``digit``, ``probability``, ``top3`` or ``error``."""
    results, images, ok = [], [], []
    for path in paths:
        try:
            image = imaging.load_digit(path)
        except imaging.ImageError as e:
            results.append({"path": path, "error": str(e)})
            continue
        result = {"path": path}
        if save_dir:
            result["preprocessed"] = save_preprocessed(save_dir, path, image)
        results.append(result)
        images.append(image)
        ok.append(result)
    if images:
        probabilities = evaluation.softmax(logits_fn(np.stack(images)))
        for result, probs in zip(ok, probabilities):
            top = np.argsort(-probs)[:3]
            result.update(digit=int(top[0]), probability=float(probs[top[0]]),
                          top3=[[int(d), float(probs[d])] for d in top])
    return results
