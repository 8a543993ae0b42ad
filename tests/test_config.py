"""Config validation and the experiment flagfiles."""

import glob
import os

import pytest
from absl import flags

from mnist_research import config as config_lib
from tests.helpers import REPO


@pytest.mark.parametrize("factory, message", [
    (lambda: config_lib.DataConfig(validation_split=0.0), "validation_split"),
    (lambda: config_lib.DataConfig(dataset="cifar"), "dataset"),
    (lambda: config_lib.ModelConfig(hidden_units=(10,), dropout_rates=(0.1, 0.2)), "same length"),
    (lambda: config_lib.ModelConfig(dropout_rates=(0.3, 1.0, 0.2)), "dropout_rates"),
    (lambda: config_lib.ModelConfig(hidden_units=(0, 1, 2)), "hidden_units"),
    (lambda: config_lib.TrainConfig(epochs=0), "epochs"),
    (lambda: config_lib.TrainConfig(batch_size=-1), "batch_size"),
    (lambda: config_lib.TrainConfig(learning_rate=0), "learning_rate"),
    (lambda: config_lib.TrainConfig(histogram_every_epochs=0), "histogram_every_epochs"),
    (lambda: config_lib.DistributeConfig(strategy="tpu"), "strategy"),
    (lambda: config_lib.DistributeConfig(mixed_precision="fp8"), "mixed_precision"),
])
def test_invalid_values_are_rejected(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_histograms_every_nth_epoch_and_the_last():
    train = config_lib.TrainConfig(epochs=12, histogram_every_epochs=5)
    assert [e for e in range(1, 13) if train.histograms_due(e)] == [5, 10, 12]
    every = config_lib.TrainConfig(epochs=3, histogram_every_epochs=1)
    assert [e for e in range(1, 4) if every.histograms_due(e)] == [1, 2, 3]
    off = config_lib.TrainConfig(epochs=3, histograms=False)
    assert not any(off.histograms_due(e) for e in range(1, 4))


def test_round_trip_and_identity():
    config = config_lib.ExperimentConfig()
    assert config_lib.ExperimentConfig.from_dict(config.to_dict()) == config
    longer = config_lib.ExperimentConfig(train=config_lib.TrainConfig(epochs=30))
    assert longer.identity() == config.identity()  # A run may be extended.
    other = config_lib.ExperimentConfig(model=config_lib.ModelConfig(batch_norm=False))
    assert other.identity() != config.identity()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "experiments", "*.flags"))))
def test_every_flagfile_parses_into_a_config(path, monkeypatch):
    from mnist_research import experiment_flags, train
    monkeypatch.chdir(REPO)
    values = flags.FlagValues()
    train.define_flags(values)
    values(["prog", f"--flagfile={path}"])
    config = experiment_flags.config_from_flags(values)
    assert config.experiment == os.path.basename(path)[:-len(".flags")]
    header = open(path).read().splitlines()[0]
    assert header.startswith("#")
