"""How training is placed on devices: :class:`DistributeConfig`."""

from __future__ import annotations

import dataclasses
from typing import Optional

from mnist_research.config.checks import (
    check,
    check_at_least,
    check_choice,
    check_types,
    is_device_name,
)

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
MIXED_PRECISION = ("none", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class DistributeConfig:
    """How training is placed on devices (see ``distribute.create_strategy``).

    Attributes:
      strategy: ``auto``, ``default``, ``one_device``, ``mirrored`` or ``multi_worker``.
      device: the device for ``one_device`` (``/cpu:0``, ``/gpu:0``).
      num_cpu_devices: split the CPU into N logical devices (N > 1 lets
        ``mirrored`` run on a CPU-only machine).
      mixed_precision: ``none``, ``mixed_float16`` or ``mixed_bfloat16``.
    """

    strategy: str = "auto"
    device: Optional[str] = None
    num_cpu_devices: int = 1
    mixed_precision: str = "none"

    def __post_init__(self):
        check_types(self)
        check(is_device_name(self.device),
              f"device must name a device such as /cpu:0 or /gpu:1, got {self.device!r}")
        check_choice("strategy", self.strategy, STRATEGIES)
        check_at_least(self, "num_cpu_devices", 1)
        check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
