"""The classifier's family and layer sizes: :class:`ModelConfig`."""

from __future__ import annotations

import dataclasses

from mnist_research.config.checks import check, check_same_length
from mnist_research.config.fields import check_declared, declared_fields, setting
from mnist_research.config.registry import MODEL_FAMILIES, model_family

# How a conv block halves the resolution: a stride-2 convolution, or a 2x2 max-pool.
CONV_POOLING = ("stride", "max")
# 28 -> 14 -> 7 -> 4 -> 2: more halvings than this leave nothing to convolve.
MAX_CONV_BLOCKS = 4


def _read_by(group: str) -> dict[str, tuple[str, ...]]:
    """The ``only_with`` rule of a setting of ``group``: the families whose entry reads it."""
    return {"family": tuple(name for name, f in MODEL_FAMILIES.items() if group in f.reads)}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The classifier: a model family (``config.registry``) and its layer sizes.

    A family reads only the groups of settings its registry entry names
    (``dense``, ``batch_norm``, ``conv``); each setting of a group applies only
    with the families that read it (``only_with``, ``config.fields``). A
    setting another family reads must keep its default and is stored in its
    unused form (an empty list, ``False``), so ``config.json`` shows what was
    built: an MLP has ``conv_filters: []``.
    """

    family: str = setting(
        "mlp", "Model family.", flag="model", choices=MODEL_FAMILIES, hparam="model", identity=True
    )
    hidden_units: tuple[int, ...] = setting(
        (256, 128, 64),
        "Widths of the dense hidden blocks (for --model=cnn: those after the conv blocks).",
        minimum=1,
        only_with=_read_by("dense"),
        hparam="model",
        identity=True,
    )
    dropout_rates: tuple[float, ...] = setting(
        (0.3, 0.3, 0.2),
        "Dropout after each dense block.",
        minimum=0.0,
        below=1.0,
        only_with=_read_by("dense"),
        hparam="model",
        identity=True,
    )
    batch_norm: bool = setting(
        True,
        "BatchNormalization in every block.",
        only_with=_read_by("batch_norm"),
        hparam="model",
        identity=True,
    )
    num_classes: int = setting(
        10,
        "Size of the softmax output (the dataset's classes).",
        flag=False,
        minimum=2,
        hparam=None,
        identity=True,
    )
    conv_filters: tuple[int, ...] = setting(
        (32, 64),
        "Filters of each conv block (each halves the resolution).",
        minimum=1,
        only_with=_read_by("conv"),
        hparam="topology",
        identity=True,
    )
    conv_dropout_rates: tuple[float, ...] = setting(
        (0.1, 0.1),
        "Dropout after each conv block.",
        minimum=0.0,
        below=1.0,
        only_with=_read_by("conv"),
        hparam="topology",
        identity=True,
    )
    conv_kernel_size: int = setting(
        3,
        "Kernel side of every convolution (odd).",
        minimum=1,
        only_with=_read_by("conv"),
        hparam="topology",
        identity=True,
    )
    conv_pooling: str = setting(
        "stride",
        "How a conv block halves the resolution: stride (stride-2 conv; fast on "
        "CPUs) or max (stride-1 conv, then 2x2 max-pool).",
        choices=CONV_POOLING,
        only_with=_read_by("conv"),
        hparam="topology",
        identity=True,
    )

    def __post_init__(self):
        for field, _ in declared_fields(self):
            if field.type.startswith("tuple["):
                value = getattr(self, field.name)
                if isinstance(value, (list, tuple)):
                    object.__setattr__(self, field.name, tuple(value))
        check_declared(self)
        if model_family(self.family).has_dense_blocks:
            check(len(self.hidden_units) > 0, "hidden_units must name at least one layer")
            check_same_length(self, "hidden_units", "dropout_rates")
        if model_family(self.family).has_conv_blocks:
            check(
                0 < len(self.conv_filters) <= MAX_CONV_BLOCKS,
                f"conv_filters must name 1 to {MAX_CONV_BLOCKS} conv blocks for model cnn, "
                f"got {list(self.conv_filters)}",
            )
            check_same_length(self, "conv_filters", "conv_dropout_rates")
            check(
                self.conv_kernel_size % 2 == 1,
                f"conv_kernel_size must be a positive odd number, got {self.conv_kernel_size}",
            )
