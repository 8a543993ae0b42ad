"""The model families' classes, by ``--model`` name.

Every family takes float pixels ``[N, 784]`` (``data.model_input.to_model_input``)
and answers ``model(x, training=..., return_logits=...)``, so everything past
model construction (trainer, checkpoints, export, evaluation, predict) is the
same for all of them. A family is its module under ``model/``, its TensorFlow-free
entry in ``config.registry.MODEL_FAMILIES`` (what it reads, its help line) and its
line in :data:`FAMILIES` here; the model tests check both registries name the same
families.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from mnist_research.config import ModelConfig, model_family
from mnist_research.config import registry as config_registry
from mnist_research.errors import ConfigError
from mnist_research.model import variables
from mnist_research.model.cnn import CNNClassifier
from mnist_research.model.linear import LinearClassifier
from mnist_research.model.mlp import MLPClassifier


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """A family's class.

    Attributes:
      name: the ``--model`` value.
      model_class: the subclassed ``tf.keras.Model``; its
        ``from_config_object(ModelConfig, synchronized_bn)`` builds it unbuilt.
    """

    name: str
    model_class: type[tf.keras.Model]

    @property
    def entry(self) -> config_registry.ModelFamily:
        """The family's ``config.registry`` entry (``entry.has_batch_norm`` ...)."""
        return model_family(self.name)


FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        ModelFamily("mlp", MLPClassifier),
        ModelFamily("cnn", CNNClassifier),
        ModelFamily("linear", LinearClassifier),
    )
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
