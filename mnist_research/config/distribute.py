"""How training is placed on devices: :class:`DistributeConfig`."""

from __future__ import annotations

import dataclasses

from mnist_research.config.checks import is_device_name
from mnist_research.config.fields import check_declared, setting

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
MIXED_PRECISION = ("none", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class DistributeConfig:
    """How training is placed on devices (see ``training.devices.create_strategy``).

    The mixed-precision policy is part of the resume identity: a checkpoint
    holds the optimizer state of one policy (the loss-scale variables of
    ``mixed_float16`` exist only under it), so a run is continued under the
    policy it started with. The strategy and replica count a run recorded are
    checked on resume too (``rundir.records``): dropout masks depend on them.
    """

    strategy: str = setting(
        "auto",
        "auto: mirrored if GPUs are visible, else default; one_device; mirrored; "
        "multi_worker (TF_CONFIG).",
        choices=STRATEGIES,
        hparam=None,
        identity=False,
    )
    device: str | None = setting(
        None,
        "Device for --strategy=one_device (/cpu:0, /gpu:0).",
        hparam=None,
        identity=False,
        valid=(is_device_name, "must name a device such as /cpu:0 or /gpu:1"),
    )
    num_cpu_devices: int = setting(
        1,
        "Split the CPU into N logical devices (lets --strategy=mirrored run on a CPU).",
        minimum=1,
        maximum=64,
        hparam=None,
        identity=False,
    )
    mixed_precision: str = setting(
        "none",
        "Keras mixed-precision policy (GPUs).",
        choices=MIXED_PRECISION,
        hparam="system/precision",
        identity=True,
    )

    def __post_init__(self):
        check_declared(self)
