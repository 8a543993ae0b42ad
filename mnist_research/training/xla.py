"""The XLA speed option: what ``--jit_compile`` compiles, and on how many replicas."""

from __future__ import annotations

import tensorflow as tf

from mnist_research.config import ExperimentConfig


def jit_plan(config: ExperimentConfig, replicas: int) -> tuple[str, str]:
    """What XLA compiles, ``"step"``, ``"gradients"`` or ``"none"``, and why (for the log).

    One replica: the whole replica step (forward, backward, the optimizer, sums).
    Several replicas: the optimizer all-reduces gradients in a cross-replica
    merge that XLA cannot compile, so only the forward/backward pass is
    compiled, unless the model has BatchNormalization, which synchronizes
    batch statistics across replicas inside the forward pass: then the plain
    step runs.
    """
    if not config.train.jit_compile:
        return "none", "jit_compile is off"
    if replicas == 1:
        return "step", "jit_compile: XLA compiles the whole replica train step"
    if config.model.batch_norm:
        return "none", (
            f"jit_compile falls back to the plain step: BatchNormalization "
            f"synchronizes statistics across the {replicas} replicas inside the "
            f"forward pass, which XLA cannot compile"
        )
    return "gradients", (
        f"jit_compile: XLA compiles the forward/backward pass; the gradients "
        f"are all-reduced and applied outside it ({replicas} replicas)"
    )


def compiled(fn, jit_compile: bool):
    """``fn`` compiled by XLA when ``jit_compile``, else ``fn`` itself.

    Either way AutoGraph leaves ``fn`` alone: it has no Python control flow
    over tensors, and converting it only added to the first call's tracing.
    """
    if jit_compile:
        return tf.function(fn, jit_compile=True, autograph=False)
    return tf.autograph.experimental.do_not_convert(fn)
