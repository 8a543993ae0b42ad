"""TensorBoard: the run's writers, what they write, and the HParams dashboard's experiment.

The HParams session (hyperparameters plus ``test/<metric>``) lives in the run
dir's own event file, and every run writes the same HParams definition (it
depends on no run's values), so runs under one ``--logdir`` (a sweep, CPU next
to GPU) share one experiment in the dashboard. What TensorBoard 2.21's
dashboard does with it, checked in its code and in screenshots:

- It lists hyperparameters sorted by name and shows the first five by
  default, so the names carry a group prefix chosen to make those five tell
  runs apart: ``experiment/name``, ``experiment/seed``, ``model/batch_norm``,
  ``model/dropout_rates``, ``model/family``.
- It prints every number with 5 significant digits (``128.00``), so integer
  settings (batch size, epochs, seed, replicas) are declared as text and
  shown as written (``128``); the learning rate stays a number (interval
  filter, numeric axes in the parallel-coordinates and scatter views).
- A discrete domain becomes checkboxes that hide runs with any other value,
  so only closed sets (booleans, schedules, datasets, precisions, device
  kinds) are discrete; open sets are text (a regex filter) or an interval.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.histogram import summary_v2 as histogram_summary
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import api_pb2

from mnist_research.config import ExperimentConfig, registry
from mnist_research.config.fields import Declaration, declared_fields


class Text(hp.Domain):
    """Any string: typed ``DATA_TYPE_STRING`` with no value list (so nothing is filtered out)."""

    @property
    def dtype(self):
        return str

    def sample_uniform(self, rng=None):
        raise TypeError("a Text domain has no values to sample")

    def update_hparam_info(self, hparam_info: api_pb2.HParamInfo) -> None:
        hparam_info.type = api_pb2.DATA_TYPE_STRING


def _hparam(field: dataclasses.Field, declared: Declaration) -> hp.HParam:
    """Named ``<group>/<field>`` (or as declared, with a ``/``); closed sets are discrete
    (checkboxes), the learning rate an interval, the rest text."""
    name = declared.hparam if "/" in declared.hparam else f"{declared.hparam}/{field.name}"
    if field.type == "bool":
        domain = hp.Discrete([False, True])
    elif declared.choices is not None:
        domain = hp.Discrete(list(declared.choices))
    elif field.type == "float":
        domain = hp.RealInterval(0.0, 10.0)
    else:
        domain = Text()
    return hp.HParam(name, domain, description=declared.help)


# ``(section, field name, HParam)`` for every config field that is one.
_DEFAULTS = ExperimentConfig()
_DECLARED = [
    (section, field.name, _hparam(field, declared))
    for section, cls in [(None, _DEFAULTS), *_DEFAULTS.sections().items()]
    for field, declared in declared_fields(cls)
    if declared.hparam is not None
]
# Hyperparameters that describe where a run ran, not what it trained, by their key in
# ``devices.device_info``.
_SYSTEM = {
    "strategy": hp.HParam("system/strategy", Text()),
    "num_replicas": hp.HParam("system/replicas", Text()),
    "device_name": hp.HParam("system/device", Text(), description="CPU model or GPU name"),
    "device_kind": hp.HParam("system/device_kind", hp.Discrete(["cpu", "gpu"])),
    "tensorflow_version": hp.HParam("system/tensorflow", Text()),
}
HPARAMS = tuple(hparam for _, _, hparam in _DECLARED) + tuple(_SYSTEM.values())

# Per metric of ``config.registry``: the test score (the run dir's own event file),
# then the last epoch's validation and training values; and the training speed.
_TRAINING, _VALIDATION = api_pb2.DATASET_TRAINING, api_pb2.DATASET_VALIDATION
METRICS = (
    *(hp.Metric(f"test/{m.name}", display_name=f"test {m.name}") for m in registry.METRICS),
    *(
        hp.Metric(
            f"epoch/{m.name}",
            group=group,
            display_name=f"{group} {m.name}",
            dataset_type=dataset_type,
        )
        for group, dataset_type in (("validation", _VALIDATION), ("train", _TRAINING))
        for m in registry.METRICS
    ),
    hp.Metric(
        "epoch/examples_per_second",
        group="train",
        display_name="train examples/s",
        dataset_type=_TRAINING,
    ),
)


def _shown(value: Any) -> Any:
    """Lists as ``256,128,64``, integers as written (``128``, not ``128.00``)."""
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def hparams_of(config: ExperimentConfig, info: dict) -> dict[str, Any]:
    """This run's value of every hyperparameter in :data:`HPARAMS`."""
    values = {}
    for section, field_name, hparam in _DECLARED:
        owner = config if section is None else getattr(config, section)
        values[hparam.name] = _shown(getattr(owner, field_name))
    values.update({hparam.name: _shown(info[key]) for key, hparam in _SYSTEM.items()})
    return values


class Summaries:
    """Writes scalars, text, histograms, images and HParams for one run.

    ``run_dir`` ``None`` (non-chief workers) gives no-op writers: every method
    exists and runs, and nothing is written.
    """

    def __init__(self, run_dir: str | None):
        self.run_dir = run_dir
        self.enabled = run_dir is not None
        if self.enabled:
            self.train = tf.summary.create_file_writer(os.path.join(run_dir, "train"))
            self.validation = tf.summary.create_file_writer(os.path.join(run_dir, "validation"))
            self.session = tf.summary.create_file_writer(run_dir)
        else:
            self.train = self.validation = self.session = tf.summary.create_noop_writer()

    @staticmethod
    def scalars(writer, step: int, values: dict[str, float]) -> None:
        """Scalars ``{tag: value}`` at ``step`` in ``writer`` (e.g. ``summaries.train``)."""
        with writer.as_default(step=step):
            for tag, value in values.items():
                tf.summary.scalar(tag, value)

    def flush(self) -> None:
        for writer in (self.train, self.validation, self.session):
            writer.flush()

    def histograms(self, step: int, named_values: Iterable[tuple[str, Any]]) -> None:
        """One histogram per (tag, tensor) pair (call once per epoch, never per step).

        The buckets are counted in NumPy by TensorBoard's ``histogram_pb`` (the
        layout of ``tf.summary.histogram``): ``tf.summary.histogram`` runs a few
        dozen small ops per tensor eagerly (0.5 s of CPU for the baseline
        model's 37), and tracing them into one ``tf.function`` took 10 s.
        """
        if not self.enabled:
            return
        with self.train.as_default(step=step):
            for tag, value in named_values:
                summary = histogram_summary.histogram_pb(tag, np.asarray(value))
                tf.summary.experimental.write_raw_pb(summary.SerializeToString())
        self.train.flush()

    def start(self, config: ExperimentConfig, info: dict, flagfile_text: str | None) -> None:
        """A new run's first records: its flags (the Text tab), the HParams experiment
        definition and this run's session start (``info``: ``devices.device_info``)."""
        if not self.enabled:
            return
        with self.train.as_default(step=0):
            tf.summary.text("config/flags", "```\n" + (flagfile_text or "(none)") + "\n```")
        with self.session.as_default():
            hp.hparams_config(hparams=list(HPARAMS), metrics=list(METRICS))
            trial_id = os.path.basename(os.path.abspath(self.run_dir))
            hp.hparams(hparams_of(config, info), trial_id=trial_id)
        self.flush()

    def end_of_run(self, step: int, images: dict[str, str], test: dict[str, float]) -> None:
        """The reports' figures (``images/<name>``, from PNG files) and the test scores
        (``test/<name>``, in the HParams session's event file)."""
        with self.train.as_default(step=step):
            for name, path in images.items():
                image = tf.image.decode_png(tf.io.read_file(path), channels=3)
                tf.summary.image(f"images/{name}", image[tf.newaxis])
        self.scalars(self.session, step, {f"test/{name}": v for name, v in test.items()})
        self.flush()

    def close(self) -> None:
        for writer in (self.train, self.validation, self.session):
            writer.close()


def model_histograms(model: tf.keras.Model, gradients) -> list[tuple[str, Any]]:
    """(tag, tensor) pairs: weights, BN moving statistics and gradients.

    The tags share the prefix ``histograms/``: TensorBoard's Time Series tab
    groups cards by the tag's first component and sorts the groups by name, so
    ``epoch/`` (accuracy, loss) comes first and every histogram after it.
    """
    named = [(f"histograms/weights/{v.path}", v) for v in model.trainable_variables]
    named += [
        (f"histograms/batch_norm/{v.path}", v)
        for v in model.non_trainable_variables
        if "moving" in v.path
    ]
    named += [(f"histograms/gradients/{v.path}", g) for v, g in gradients if g is not None]
    return named
