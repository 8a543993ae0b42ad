"""The model families: a name (``--model``) → how to build, checkpoint and recognise it.

Every family takes float pixels ``[N, 784]`` (``data.model_input.to_model_input``)
and answers ``model(x, training=..., return_logits=...)``, so everything past
model construction (trainer, checkpoints, export, evaluation, predict) is the
same for all of them. To add a family: write its module under ``model/``, add
an entry to :data:`FAMILIES` and its name to ``config.MODEL_FAMILIES``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from mnist_research.config import ModelConfig
from mnist_research.errors import ConfigError
from mnist_research.model import cnn, mlp


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """How to build and checkpoint one kind of classifier.

    Attributes:
      name: the ``--model`` value.
      model_class: the subclassed ``tf.keras.Model``.
      from_config: ``(ModelConfig, synchronized_bn) → unbuilt model``.
    """

    name: str
    model_class: type
    from_config: Callable[[ModelConfig, bool], tf.keras.Model]


FAMILIES: dict[str, ModelFamily] = {
    "mlp": ModelFamily("mlp", mlp.MLPClassifier, mlp.MLPClassifier.from_config_object),
    "cnn": ModelFamily("cnn", cnn.CNNClassifier, cnn.CNNClassifier.from_config_object),
}


def family(name: str) -> ModelFamily:
    """The family called ``name``.

    Raises:
      ConfigError: no such family.
    """
    if name not in FAMILIES:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def create(config: ModelConfig, synchronized_bn: bool = False) -> tf.keras.Model:
    """The model ``config`` describes, with every variable created.

    Variables are created by calling the model on a dummy batch (``mlp.build``),
    so under a strategy call this inside ``strategy.scope()``.
    """
    return mlp.build(family(config.family).from_config(config, synchronized_bn))


def family_of(model: tf.keras.Model) -> ModelFamily:
    """The family ``model`` belongs to.

    Raises:
      ConfigError: ``model`` is not one of the registered classes.
    """
    for entry in FAMILIES.values():
        if isinstance(model, entry.model_class):
            return entry
    raise ConfigError(f"{type(model).__name__} is not a registered model family")
