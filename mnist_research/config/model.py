"""The classifier's family and layer sizes: :class:`ModelConfig`."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from mnist_research.config.checks import (
    check,
    check_all_positive,
    check_choice,
    check_rates,
    check_same_length,
    check_types,
)

# The model families ``model.registry`` builds; ``mlp`` is the seed recipe.
MODEL_FAMILIES = ("mlp", "cnn")
# How a conv block halves the resolution: a stride-2 convolution, or a 2x2 max-pool.
CONV_POOLING = ("stride", "max")
# 28 -> 14 -> 7 -> 4 -> 2: more halvings than this leave nothing to convolve.
MAX_CONV_BLOCKS = 4


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The classifier: a model family and its layer sizes.

    Attributes:
      family: ``mlp`` (dense blocks only, the seed recipe) or ``cnn`` (conv
        blocks, then dense blocks).
      hidden_units: width of each hidden ``DenseBlock`` (for ``cnn``: the dense
        blocks after the conv blocks).
      dropout_rates: dropout after each dense block; same length as ``hidden_units``.
      batch_norm: put BatchNormalization between each Dense (or Conv) and its ReLU.
      num_classes: size of the softmax output.
      conv_filters: ``cnn`` only: filters of each conv block; each block halves
        the resolution. Empty for ``mlp``.
      conv_dropout_rates: ``cnn`` only: dropout after each conv block; same
        length as ``conv_filters``. Empty for ``mlp``.
      conv_kernel_size: ``cnn`` only: the square kernel of every conv layer.
      conv_pooling: ``cnn`` only: ``stride`` (the convolution has stride 2) or
        ``max`` (stride-1 convolution, then a 2x2 max-pool).
    """

    family: str = "mlp"
    hidden_units: Tuple[int, ...] = (256, 128, 64)
    dropout_rates: Tuple[float, ...] = (0.3, 0.3, 0.2)
    batch_norm: bool = True
    num_classes: int = 10
    conv_filters: Tuple[int, ...] = ()
    conv_dropout_rates: Tuple[float, ...] = ()
    conv_kernel_size: int = 3
    conv_pooling: str = "stride"

    def __post_init__(self):
        check_types(self)
        for name, cast in (("hidden_units", int), ("dropout_rates", float),
                           ("conv_filters", int), ("conv_dropout_rates", float)):
            object.__setattr__(self, name, tuple(cast(v) for v in getattr(self, name)))
        check_choice("model", self.family, MODEL_FAMILIES)
        check(len(self.hidden_units) > 0, "hidden_units must name at least one layer")
        check_all_positive(self, "hidden_units")
        check_same_length(self, "hidden_units", "dropout_rates")
        check_rates(self, "dropout_rates")
        check(self.num_classes >= 2, f"num_classes must be >= 2, got {self.num_classes}")
        if self.family == "cnn":
            self._check_conv()
        else:
            check(not self.conv_filters and not self.conv_dropout_rates,
                  f"conv_filters and conv_dropout_rates apply to model cnn only, not "
                  f"{self.family} (got {list(self.conv_filters)} and "
                  f"{list(self.conv_dropout_rates)})")

    def _check_conv(self) -> None:
        check(0 < len(self.conv_filters) <= MAX_CONV_BLOCKS,
              f"conv_filters must name 1 to {MAX_CONV_BLOCKS} conv blocks for model cnn, "
              f"got {list(self.conv_filters)}")
        check_all_positive(self, "conv_filters")
        check_same_length(self, "conv_filters", "conv_dropout_rates")
        check_rates(self, "conv_dropout_rates")
        check(self.conv_kernel_size > 0 and self.conv_kernel_size % 2 == 1,
              f"conv_kernel_size must be a positive odd number, got {self.conv_kernel_size}")
        check_choice("conv_pooling", self.conv_pooling, CONV_POOLING)
