"""The HParams dashboard's experiment: every hyperparameter with its type, and the metrics.

Every run writes the same definition (it depends on no run's values), so runs
under one ``--logdir`` (a sweep, CPU next to GPU) share one experiment in
TensorBoard, whichever run's definition it reads.

What TensorBoard 2.21's dashboard does with it, checked in its code and in
screenshots:

- It lists hyperparameters sorted by name and shows the first five by
  default, so the names carry a group prefix chosen to make those five the
  ones a researcher varies: ``model/batch_norm``, ``model/dropout_rates``,
  ``model/hidden_units``, ``optimizer/batch_size``, ``optimizer/learning_rate``.
- It prints every number with 5 significant digits (``128.00``), so integer
  settings (batch size, epochs, seed, replicas) are declared as text and
  shown as written (``128``); the learning rate stays a number (interval
  filter, numeric axes in the parallel-coordinates and scatter views).
- A discrete domain becomes checkboxes that hide runs with any other value,
  so only closed sets (booleans, schedules, datasets, precisions, device
  kinds) are discrete; open sets are text (a regex filter) or an interval.
"""

from __future__ import annotations

from typing import Any, Optional

from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import api_pb2

from mnist_research import config as config_lib
from mnist_research.config import ExperimentConfig


class Text(hp.Domain):
    """Any string: typed ``DATA_TYPE_STRING`` with no value list (so nothing is filtered out)."""

    @property
    def dtype(self):
        return str

    def sample_uniform(self, rng=None):
        raise TypeError("a Text domain has no values to sample")

    def update_hparam_info(self, hparam_info: api_pb2.HParamInfo) -> None:
        hparam_info.type = api_pb2.DATA_TYPE_STRING


HPARAMS = (
    hp.HParam("model/family", hp.Discrete(list(config_lib.MODEL_FAMILIES)),
              description="--model: mlp (the seed recipe) or cnn"),
    hp.HParam("topology/conv_filters", Text(), description="channels of the conv blocks (cnn)"),
    hp.HParam("topology/conv_dropout_rates", Text(), description="dropout after each conv block"),
    hp.HParam("model/hidden_units", Text(), description="widths of the hidden blocks"),
    hp.HParam("model/dropout_rates", Text(), description="dropout after each block"),
    hp.HParam("model/batch_norm", hp.Discrete([False, True]),
              description="BatchNormalization in every hidden block"),
    hp.HParam("optimizer/learning_rate", hp.RealInterval(0.0, 10.0),
              description="Adam's (initial) learning rate"),
    hp.HParam("optimizer/lr_schedule", hp.Discrete(list(config_lib.LR_SCHEDULES))),
    hp.HParam("optimizer/batch_size", Text(), description="global batch size"),
    hp.HParam("run/epochs", Text()),
    hp.HParam("run/augment", hp.Discrete([False, True]),
              description="random rotation, zoom and translation of training images"),
    hp.HParam("run/early_stopping_patience", Text()),
    hp.HParam("run/restore_best", hp.Discrete([False, True]),
              description="evaluate and export the best validation epoch"),
    hp.HParam("run/seed", Text()),
    hp.HParam("run/experiment", Text(), description="the flagfile's --experiment"),
    hp.HParam("run/dataset", hp.Discrete(list(config_lib.DATASETS))),
    hp.HParam("system/strategy", Text()),
    hp.HParam("system/replicas", Text()),
    hp.HParam("system/device", Text(), description="CPU model or GPU name"),
    hp.HParam("system/device_kind", hp.Discrete(["cpu", "gpu"])),
    hp.HParam("system/precision", hp.Discrete(list(config_lib.MIXED_PRECISION)),
              description="Keras mixed-precision policy"),
    hp.HParam("system/tensorflow", Text()),
)

# The final test scalars (the run dir's own event file) and the last epoch's scalars.
_TRAINING, _VALIDATION = api_pb2.DATASET_TRAINING, api_pb2.DATASET_VALIDATION
METRICS = (
    hp.Metric("test/accuracy", display_name="test accuracy"),
    hp.Metric("test/loss", display_name="test loss"),
    hp.Metric("epoch/accuracy", group="validation", display_name="validation accuracy",
              dataset_type=_VALIDATION),
    hp.Metric("epoch/loss", group="validation", display_name="validation loss",
              dataset_type=_VALIDATION),
    hp.Metric("epoch/accuracy", group="train", display_name="train accuracy",
              dataset_type=_TRAINING),
    hp.Metric("epoch/examples_per_second", group="train", display_name="train examples/s",
              dataset_type=_TRAINING),
)


def hparams_of(config: ExperimentConfig, info: dict) -> dict[str, Any]:
    """This run's value of every hyperparameter in :data:`HPARAMS`."""
    return {
        "model/family": config.model.family,
        "topology/conv_filters": ",".join(str(f) for f in config.model.conv_filters),
        "topology/conv_dropout_rates": ",".join(f"{r:g}" for r in config.model.conv_dropout_rates),
        "model/hidden_units": ",".join(str(u) for u in config.model.hidden_units),
        "model/dropout_rates": ",".join(f"{r:g}" for r in config.model.dropout_rates),
        "model/batch_norm": config.model.batch_norm,
        "optimizer/learning_rate": config.train.learning_rate,
        "optimizer/lr_schedule": config.train.lr_schedule,
        "optimizer/batch_size": str(config.train.batch_size),
        "run/epochs": str(config.train.epochs),
        "run/augment": config.train.augment,
        "run/early_stopping_patience": str(config.train.early_stopping_patience),
        "run/restore_best": config.train.restore_best,
        "run/seed": str(config.train.seed),
        "run/experiment": config.experiment,
        "run/dataset": config.data.dataset,
        "system/strategy": info["strategy"],
        "system/replicas": str(info["num_replicas"]),
        "system/device": info["device_name"],
        "system/device_kind": info["device_kind"],
        "system/precision": config.distribute.mixed_precision,
        "system/tensorflow": info["tensorflow_version"],
    }


def write(values: dict[str, Any], trial_id: str, time_created_secs: Optional[float] = None
          ) -> None:
    """Writes the experiment definition and this run's session to the default writer."""
    hp.hparams_config(hparams=list(HPARAMS), metrics=list(METRICS),
                      time_created_secs=time_created_secs)
    hp.hparams(values, trial_id=trial_id)
