"""The model families of ``config.registry``, resolved to their classes.

Every family takes float pixels ``[N, 784]`` (``data.model_input.to_model_input``)
and answers ``model(x, training=..., return_logits=...)``, so everything past
model construction (trainer, checkpoints, export, evaluation, predict) is the
same for all of them. A family is its module under ``model/`` plus its entry in
``config.registry.MODEL_FAMILIES``; nothing here changes when one is added.
"""

from __future__ import annotations

import dataclasses
import importlib

import tensorflow as tf

from mnist_research.config import MODEL_FAMILIES, ModelConfig
from mnist_research.config import registry as config_registry
from mnist_research.errors import ConfigError
from mnist_research.model import variables


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """A family's registry entry and its class.

    Attributes:
      name: the ``--model`` value.
      model_class: the subclassed ``tf.keras.Model``; its
        ``from_config_object(ModelConfig, synchronized_bn)`` builds it unbuilt.
      entry: the family's ``config.registry.ModelFamily`` entry (what it reads
        and has: ``entry.has_batch_norm``, ``entry.has_conv_blocks``).
    """

    name: str
    model_class: type
    entry: config_registry.ModelFamily


def _resolve(entry: config_registry.ModelFamily) -> ModelFamily:
    module, _, name = entry.model_class.partition(":")
    return ModelFamily(entry.name, getattr(importlib.import_module(module), name), entry)


FAMILIES: dict[str, ModelFamily] = {name: _resolve(entry) for name, entry in MODEL_FAMILIES.items()}


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

    Variables are created by calling the model on a dummy batch
    (``variables.build``), so under a strategy call this inside ``strategy.scope()``.
    """
    model_class = family(config.family).model_class
    return variables.build(model_class.from_config_object(config, synchronized_bn))


def family_of(model: tf.keras.Model) -> ModelFamily:
    """The family ``model`` belongs to.

    Raises:
      ConfigError: ``model`` is not one of the registered classes.
    """
    for entry in FAMILIES.values():
        if isinstance(model, entry.model_class):
            return entry
    raise ConfigError(f"{type(model).__name__} is not a registered model family")
