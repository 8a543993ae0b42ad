"""Config validation and the experiment flagfiles."""

import dataclasses
import glob
import os

import pytest
from absl import flags

from mnist_research import config as config_lib
from mnist_research.config.saved import config_from_dict, resume_identity
from tests.helpers import REPO


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: config_lib.DataConfig(validation_split=0.0), "validation_split"),
        (lambda: config_lib.DataConfig(dataset="cifar"), "dataset"),
        (
            lambda: config_lib.ModelConfig(hidden_units=(10,), dropout_rates=(0.1, 0.2)),
            "same length",
        ),
        (lambda: config_lib.ModelConfig(dropout_rates=(0.3, 1.0, 0.2)), "dropout_rates"),
        (lambda: config_lib.ModelConfig(hidden_units=(0, 1, 2)), "hidden_units"),
        (lambda: config_lib.ModelConfig(family="resnet"), "model must be one of mlp, cnn"),
        (
            lambda: config_lib.ModelConfig(conv_filters=(8,), conv_dropout_rates=(0.1,)),
            "apply only to model=cnn, not model=mlp",
        ),
        (
            lambda: config_lib.ModelConfig(family="cnn", conv_filters=(), conv_dropout_rates=()),
            "conv_filters must name 1 to 4",
        ),
        (
            lambda: config_lib.ModelConfig(
                family="cnn", conv_filters=(8, 8, 8, 8, 8), conv_dropout_rates=(0.1,) * 5
            ),
            "1 to 4 conv blocks",
        ),
        (
            lambda: config_lib.ModelConfig(
                family="cnn", conv_filters=(8, 16), conv_dropout_rates=(0.1,)
            ),
            "same length",
        ),
        (
            lambda: config_lib.ModelConfig(
                family="cnn", conv_filters=(8,), conv_dropout_rates=(0.1,), conv_kernel_size=4
            ),
            "positive odd",
        ),
        (
            lambda: config_lib.ModelConfig(
                family="cnn", conv_filters=(8,), conv_dropout_rates=(0.1,), conv_pooling="avg"
            ),
            "conv_pooling",
        ),
        (lambda: config_lib.TrainConfig(early_stopping_patience=-1), "early_stopping_patience"),
        (lambda: config_lib.TrainConfig(epochs=0), "epochs"),
        (lambda: config_lib.TrainConfig(batch_size=-1), "batch_size"),
        (lambda: config_lib.TrainConfig(eval_batch_size=0), "eval_batch_size"),
        (lambda: config_lib.TrainConfig(learning_rate=0), "learning_rate"),
        (lambda: config_lib.TrainConfig(histogram_every_epochs=0), "histogram_every_epochs"),
        (lambda: config_lib.DistributeConfig(strategy="tpu"), "strategy"),
        (lambda: config_lib.DistributeConfig(mixed_precision="fp8"), "mixed_precision"),
    ],
)
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
    assert config_from_dict(config.to_dict()) == config
    longer = config_lib.ExperimentConfig(train=config_lib.TrainConfig(epochs=30))
    assert resume_identity(longer) == resume_identity(config)  # A run may be extended.
    other = config_lib.ExperimentConfig(model=config_lib.ModelConfig(batch_norm=False))
    assert resume_identity(other) != resume_identity(config)
    stopping = config_lib.ExperimentConfig(
        train=config_lib.TrainConfig(early_stopping_patience=3, restore_best=True)
    )
    # When to stop is not what is trained.
    assert resume_identity(stopping) == resume_identity(config)
    evaluated = config_lib.ExperimentConfig(train=config_lib.TrainConfig(eval_batch_size=128))
    # Evaluation batches train nothing.
    assert resume_identity(evaluated) == resume_identity(config)
    augmented = config_lib.ExperimentConfig(train=config_lib.TrainConfig(augment=True))
    assert resume_identity(augmented) != resume_identity(config)
    cnn = config_lib.ExperimentConfig(
        model=config_lib.ModelConfig(family="cnn", conv_filters=(8,), conv_dropout_rates=(0.0,))
    )
    assert config_from_dict(cnn.to_dict()) == cnn
    assert resume_identity(cnn) != resume_identity(config)


def test_config_json_of_earlier_runs_still_loads():
    """A config.json written before model families existed is an MLP run."""
    raw = config_lib.ExperimentConfig().to_dict()
    for key in ("family", "conv_filters", "conv_dropout_rates", "conv_kernel_size", "conv_pooling"):
        del raw["model"][key]
    for key in ("augment", "early_stopping_patience", "restore_best", "eval_batch_size"):
        del raw["train"][key]
    old = config_from_dict(raw)
    assert old.model.family == "mlp"
    assert resume_identity(old) == resume_identity(config_lib.ExperimentConfig())


def _parse(*argv):
    from mnist_research import train
    from mnist_research.config import flags as experiment_flags

    values = flags.FlagValues()
    train.define_flags(values)
    values(["prog", *argv])
    return values, experiment_flags


def test_conv_flags_with_the_mlp_are_a_usage_error():
    from absl import app

    values, experiment_flags = _parse("--conv_filters=8,16", "--conv_kernel_size=5")
    with pytest.raises(
        app.UsageError, match="--conv_filters, --conv_kernel_size apply only to --model=cnn"
    ):
        experiment_flags.config_from_flags(values)


def test_model_flags_reach_the_config_and_the_flagfile():
    values, experiment_flags = _parse(
        "--model=cnn",
        "--conv_filters=8,16",
        "--conv_dropout_rates=0,0.2",
        "--hidden_units=32",
        "--dropout_rates=0.5",
        "--augment",
        "--early_stopping_patience=3",
    )
    config = experiment_flags.config_from_flags(values)
    assert (config.model.family, config.model.conv_filters) == ("cnn", (8, 16))
    assert config.model.conv_dropout_rates == (0.0, 0.2) and config.model.hidden_units == (32,)
    assert config.train.augment and config.train.early_stopping_patience == 3
    assert "--conv_filters=8,16" in experiment_flags.flagfile_text(config)
    mlp_values, _ = _parse("--hidden_units=32", "--dropout_rates=0.5")
    mlp = experiment_flags.config_from_flags(mlp_values)
    assert mlp.model.family == "mlp" and mlp.model.conv_filters == ()
    text = experiment_flags.flagfile_text(mlp)
    assert "--model=mlp" in text and "conv_" not in text  # flags.txt reruns as given.


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "experiments", "*.flags"))))
def test_every_flagfile_parses_into_a_config(path, monkeypatch):
    from mnist_research import train
    from mnist_research.config import flags as experiment_flags

    monkeypatch.chdir(REPO)
    values = flags.FlagValues()
    train.define_flags(values)
    values(["prog", f"--flagfile={path}"])
    config = experiment_flags.config_from_flags(values)
    assert config.experiment == os.path.basename(path)[: -len(".flags")]
    header = open(path).read().splitlines()[0]
    assert header.startswith("#")


def test_smoke_flags_shorten_whatever_experiment_comes_before_them(monkeypatch):
    from mnist_research import flagfiles, train
    from mnist_research.config import flags as experiment_flags

    monkeypatch.chdir(REPO)

    def config_of(*names):
        values = flags.FlagValues()
        train.define_flags(values)
        values(flagfiles.expand(["prog", *(f"--flagfile=experiments/{n}.flags" for n in names)]))
        return experiment_flags.config_from_flags(values)

    cnn, cnn_smoke = config_of("cnn"), config_of("cnn", "smoke")
    assert cnn_smoke.model == cnn.model  # the CNN recipe, not the baseline's dense head
    assert cnn_smoke.train.lr_schedule == cnn.train.lr_schedule == "cosine"
    assert (cnn_smoke.train.epochs, cnn_smoke.data.limit_train) == (2, 2000)
    # Alone, the baseline recipe shortened: everything else as baseline.flags sets it.
    baseline = config_of("baseline")
    assert config_of("smoke") == dataclasses.replace(
        baseline,
        experiment="smoke",
        data=dataclasses.replace(baseline.data, limit_train=2000, limit_test=500),
        train=dataclasses.replace(
            baseline.train, epochs=2, steps_per_loop=5, summary_every_steps=5
        ),
    )
