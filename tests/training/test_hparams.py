"""The HParams dashboard's definition: typed, the important ones first, the same for every run."""

import os

import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from mnist_research.config import ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.training.summaries import HPARAMS, METRICS, Summaries

INFO = {
    "strategy": "MirroredStrategy",
    "device_name": "NVIDIA H100",
    "device_kind": "gpu",
    "num_replicas": 2,
    "tensorflow_version": "2.21.0",
}
WIDE = ExperimentConfig(
    experiment="wide",
    model=ModelConfig(hidden_units=(1024, 512, 256)),
    train=TrainConfig(batch_size=256, epochs=40, learning_rate=3e-4, lr_schedule="cosine", seed=7),
)


def _written(run_dir, config):
    summaries = Summaries(str(run_dir))
    summaries.start(config, INFO, None)
    summaries.close()
    acc = event_accumulator.EventAccumulator(str(run_dir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]
    ).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    return experiment, session


def test_every_hparam_is_typed_and_the_ones_researchers_vary_are_shown_first(tmp_path):
    experiment, _ = _written(tmp_path, ExperimentConfig())
    infos = list(experiment.hparam_infos)
    assert all(info.type != api_pb2.DATA_TYPE_UNSET for info in infos)
    # TensorBoard sorts by name and shows the first five by default.
    assert sorted(info.name for info in infos)[:5] == [
        "experiment/name",
        "experiment/seed",
        "model/batch_norm",
        "model/dropout_rates",
        "model/family",
    ]
    types = {info.name: info.type for info in infos}
    assert types["model/batch_norm"] == api_pb2.DATA_TYPE_BOOL
    assert types["optimizer/learning_rate"] == api_pb2.DATA_TYPE_FLOAT64
    assert types["optimizer/batch_size"] == api_pb2.DATA_TYPE_STRING  # shown "128", not "128.00"
    assert len(experiment.metric_infos) == len(METRICS)


def test_all_runs_share_one_definition_and_discrete_domains_hold_their_values(tmp_path):
    base, base_session = _written(tmp_path / "a", ExperimentConfig())
    wide, wide_session = _written(tmp_path / "b", WIDE)
    assert list(base.hparam_infos) == list(wide.hparam_infos)
    assert list(base.metric_infos) == list(wide.metric_infos)
    for info in wide.hparam_infos:
        value = wide_session.hparams[info.name]
        if info.HasField("domain_discrete"):
            assert value in list(info.domain_discrete.values), info.name
    assert wide_session.hparams["optimizer/batch_size"].string_value == "256"
    assert wide_session.hparams["model/hidden_units"].string_value == "1024,512,256"
    assert wide_session.hparams["system/replicas"].string_value == "2"
    assert wide_session.hparams["optimizer/learning_rate"].number_value == pytest.approx(3e-4)
    assert set(base_session.hparams) == {h.name for h in HPARAMS}
    assert base_session.group_name != wide_session.group_name
    assert os.path.basename(tmp_path / "b") in wide_session.group_name
