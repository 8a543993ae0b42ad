"""--optimizer and its settings: derived from the registry and the settings' only_with rules."""

import glob
import os

import pytest
from absl import app, flags

from mnist_research import config as config_lib
from mnist_research.config import ExperimentConfig, TrainConfig
from mnist_research.config import flags as experiment_flags
from mnist_research.config.saved import config_from_dict, differences, resume_identity

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NEW = {"optimizer": "adam", "weight_decay": 0.0, "momentum": 0.0, "clip_global_norm": 0.0}


def _values():
    values = flags.FlagValues()
    experiment_flags.define_experiment_flags(values)
    return values


def _config(*argv):
    values = _values()
    values(["prog", *argv])
    return experiment_flags.config_from_flags(values)


def test_the_optimizer_flag_lists_the_registry_with_each_entry_help():
    values = _values()
    assert values["optimizer"].parser.enum_values == list(config_lib.OPTIMIZERS)
    for entry in config_lib.OPTIMIZERS.values():
        assert f"{entry.name}: {entry.help}" in values["optimizer"].help


def test_help_names_the_optimizers_a_setting_applies_to():
    values = _values()
    assert values["momentum"].help.startswith("--optimizer=sgd: ")
    assert values["weight_decay"].help.startswith("--optimizer=adamw|sgd: ")
    assert values["fused_adam"].help.startswith("--optimizer=adam: ")
    assert not values["clip_global_norm"].help.startswith("--")  # every optimizer
    assert values["hidden_units"].help.startswith("--model=mlp|cnn: ")


def test_a_setting_of_another_optimizer_is_one_refusal_line():
    with pytest.raises(app.UsageError) as refused:
        _config("--momentum=0.9", "--optimizer=adam")
    assert str(refused.value) == "--momentum apply only to --optimizer=sgd, not --optimizer=adam"
    with pytest.raises(app.UsageError) as refused:
        _config("--model=linear", "--hidden_units=32", "--optimizer=sgd", "--nofused_adam")
    assert str(refused.value) == (
        "--hidden_units apply only to --model=mlp or --model=cnn, not --model=linear; "
        "--fused_adam apply only to --optimizer=adam, not --optimizer=sgd"
    )
    with pytest.raises(ValueError) as refused:  # a config built in code names the value too
        TrainConfig(optimizer="adamw", momentum=0.5)
    assert (
        str(refused.value) == "momentum apply only to optimizer=sgd, not optimizer=adamw (got 0.5)"
    )


def test_settings_that_apply_reach_the_config_and_flags_txt():
    config = _config("--optimizer=sgd", "--momentum=0.9", "--weight_decay=1e-4")
    assert (config.train.momentum, config.train.weight_decay) == (0.9, 1e-4)
    assert config.train.fused_adam is False  # Adam's setting, in its unused form
    text = experiment_flags.flagfile_text(config)
    assert "--momentum=0.9\n" in text and "--weight_decay=0.0001\n" in text
    assert "fused_adam" not in text
    argv = [line for line in text.splitlines() if not line.startswith("#")]
    assert _config(*argv) == config
    # Restating another optimizer's defaults is no error (layered flagfiles do).
    assert _config("--momentum=0", "--weight_decay=0", "--fused_adam").train == TrainConfig()


def test_the_default_recipe_is_unchanged():
    assert {name: getattr(TrainConfig(), name) for name in NEW} == NEW
    assert TrainConfig().fused_adam is True
    # A config.json written before these settings existed loads as the default recipe,
    # so its run dir resumes, and is refused with another optimizer.
    old = ExperimentConfig().to_dict()
    for name in NEW:
        del old["train"][name]
    assert resume_identity(config_from_dict(old)) == resume_identity(ExperimentConfig())
    sgd = ExperimentConfig(train=TrainConfig(optimizer="sgd"))
    assert differences(resume_identity(config_from_dict(old)), resume_identity(sgd)) == [
        "train.optimizer: adam -> sgd"
    ]


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "experiments", "*.flags"))))
def test_flags_txt_of_every_flagfile_names_the_optimizer_and_no_unused_setting(path, monkeypatch):
    monkeypatch.chdir(REPO)
    lines = experiment_flags.flagfile_text(_config(f"--flagfile={path}")).splitlines()
    assert "--optimizer=adam" in lines and "--clip_global_norm=0.0" in lines
    assert not [line for line in lines if "momentum" in line or "weight_decay" in line]


def test_bounds_of_the_new_settings():
    for kwargs, message in (
        (dict(optimizer="sgd", momentum=1.0), "momentum must be in \\[0, 1\\)"),
        (dict(optimizer="adamw", weight_decay=-0.1), "weight_decay must be >= 0"),
        (dict(clip_global_norm=-1.0), "clip_global_norm must be >= 0"),
        (dict(optimizer="rmsprop"), "optimizer must be one of adam, adamw, sgd"),
    ):
        with pytest.raises(ValueError, match=message):
            TrainConfig(**kwargs)
