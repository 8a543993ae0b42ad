"""The optimizers ``--optimizer`` chooses from: one entry each, without TensorFlow.

An entry names the optimizer, gives its line of ``--help`` and how many slot
variables it keeps per model variable (the memory pre-check,
``training.preflight``). How each is built from a ``TrainConfig`` is its
builder in ``training.optimizers.BUILDERS``, under the same name. A setting
only some optimizers read declares them (``only_with={"optimizer": ("sgd",)}``
in ``config.train``) and is refused with the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """One ``--optimizer`` value.

    Attributes:
      name: the ``--optimizer`` value.
      help: one line for ``--help``.
      slots: ``slots(train_config)``: slot variables per model variable
        (Adam's two moments; SGD's momentum, none without it).
    """

    name: str
    help: str
    slots: Callable[[Any], int]


OPTIMIZERS: dict[str, Optimizer] = {
    entry.name: entry
    for entry in (
        Optimizer("adam", "Adam (the notebook's recipe)", lambda train: 2),
        Optimizer("adamw", "Adam with decoupled --weight_decay", lambda train: 2),
        Optimizer(
            "sgd",
            "SGD, with --momentum and --weight_decay",
            lambda train: 1 if train.momentum else 0,
        ),
    )
}


def optimizer(name: str) -> Optimizer:
    """The registry entry of ``name`` (a ``ValueError`` naming the choices if unknown)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name]
