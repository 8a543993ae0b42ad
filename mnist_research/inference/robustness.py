"""Accuracy of ``predict``'s preprocessing plus a model on digits rendered as photos.

Each condition of :mod:`photo_conditions` renders the same digits into encoded
image files; those bytes go through the same decoding and preprocessing as
``predict`` (``imaging.decode`` then ``imaging.to_mnist``), and the model
classifies the result. A picture the preprocessing refuses (no ink found)
counts as wrong and is also counted separately.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Iterable

import numpy as np

from mnist_research import files
from mnist_research.inference import imaging
from mnist_research.inference import photo_conditions as photos

LogitsFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ConditionResult:
    """Accuracy of one condition: ``correct`` of ``total``, ``refused`` without an answer."""

    name: str
    correct: int
    total: int
    refused: int

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)


def preprocess_condition(
    digits: np.ndarray,
    capture: photos.Capture,
    seed: int,
    examples_dir: str | None = None,
    num_examples: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Renders ``digits`` under ``capture`` and preprocesses them like ``predict``.

    Returns:
      uint8 ``[N, 28, 28]`` model inputs (zeros where refused) and a bool ``[N]``
      mask of the pictures the preprocessing refused.
    """
    rng = np.random.default_rng(seed)
    inputs = np.zeros((len(digits), imaging.SIZE, imaging.SIZE), np.uint8)
    refused = np.zeros(len(digits), bool)
    for i, digit in enumerate(digits):
        encoded = photos.render(digit, capture, rng)
        if examples_dir and i < num_examples:
            suffix = ".png" if capture.jpeg is None else ".jpg"
            files.atomic_write_bytes(os.path.join(examples_dir, f"{i}{suffix}"), encoded)
        try:
            inputs[i] = imaging.to_mnist(imaging.decode(io.BytesIO(encoded), f"#{i}"), f"#{i}")
        except imaging.ImageError:
            refused[i] = True
    return inputs, refused


def measure(
    logits_fn: LogitsFn,
    digits: np.ndarray,
    labels: np.ndarray,
    conditions: dict[str, photos.Capture],
    seed: int = 0,
    examples_dir: str | None = None,
    num_examples: int = 8,
) -> list[ConditionResult]:
    """The clean accuracy (the digits as given) followed by one result per condition.

    Every condition renders with ``seed`` (so the same digits get the same sizes and
    placements where the conditions share them). With ``examples_dir``, the first
    ``num_examples`` pictures of each condition are written to a subfolder of it.
    """
    labels = np.asarray(labels)
    clean = int((logits_fn(digits).argmax(axis=1) == labels).sum())
    results = [ConditionResult("clean 28×28 test digits (no rendering)", clean, len(labels), 0)]
    for index, (name, capture) in enumerate(conditions.items()):
        folder = None
        if examples_dir:
            folder = os.path.join(examples_dir, f"{index:02d}")
            files.atomic_write_text(os.path.join(folder, "condition.txt"), f"{name}\n{capture}\n")
        inputs, refused = preprocess_condition(digits, capture, seed, folder, num_examples)
        predicted = logits_fn(inputs).argmax(axis=1)
        correct = int(((predicted == labels) & ~refused).sum())
        results.append(ConditionResult(name, correct, len(labels), int(refused.sum())))
    return results


def markdown_table(results: Iterable[ConditionResult]) -> str:
    """A README-ready table: condition, accuracy, change from the first row, refused."""
    results = list(results)
    reference = results[0].accuracy
    lines = ["| condition | accuracy | vs. clean | no ink found |", "|---|---:|---:|---:|"]
    for r in results:
        delta = 100 * (r.accuracy - reference)
        lines.append(f"| {r.name} | {100 * r.accuracy:.1f} % | {delta:+.1f} | {r.refused} |")
    return "\n".join(lines)
