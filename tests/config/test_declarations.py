"""One declaration per setting: flags, config, flags.txt, HParams and identity agree."""

import dataclasses
import glob
import os

import pytest
from absl import app, flags

from mnist_research import config as config_lib
from mnist_research import flagfiles
from mnist_research.config import ExperimentConfig
from mnist_research.config import flags as experiment_flags
from mnist_research.config.fields import declared_fields
from mnist_research.config.saved import resume_identity
from mnist_research.training.summaries import HPARAMS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = {
    f.name: f.default_factory
    for f in dataclasses.fields(ExperimentConfig)
    if f.default_factory is not dataclasses.MISSING
}


def _all_fields():
    """(owner class, field) for the experiment's own fields and every section's."""
    yield from (
        (ExperimentConfig, f)
        for f in dataclasses.fields(ExperimentConfig)
        if f.name not in SECTIONS
    )
    for cls in SECTIONS.values():
        yield from ((cls, f) for f in dataclasses.fields(cls))


def _declared():
    """(field, declaration) of the experiment's own settings and every section's."""
    for cls in (ExperimentConfig, *SECTIONS.values()):
        yield from declared_fields(cls)


def _parse(*argv):
    values = flags.FlagValues()
    experiment_flags.define_experiment_flags(values)
    values(["prog", *argv])
    return values


def _round_trip(config):
    """config -> flags.txt -> flags -> config."""
    text = experiment_flags.flagfile_text(config)
    argv = flagfiles.arguments(text)  # as --flagfile=flags.txt reads it
    return experiment_flags.config_from_flags(_parse(*argv)), text


def test_every_field_is_declared_with_its_hparam_and_identity_decided():
    for owner, field in _all_fields():
        declared = [f for f, _ in declared_fields(owner)]
        assert field in declared, f"{owner.__name__}.{field.name} is not declared with setting()"


def test_every_flag_maps_to_exactly_one_field_and_back():
    names = [declared.flag for _, _, declared in experiment_flags.experiment_settings()]
    assert len(names) == len(set(names))
    values = flags.FlagValues()
    experiment_flags.define_experiment_flags(values)
    defined = set(values) - set(flags.FlagValues())  # minus absl's own (flagfile, help...)
    assert defined == set(names)
    with_flag = [d.flag for _, d in _declared() if d.flag]
    assert sorted(with_flag) == sorted(names)


def test_every_hparam_comes_from_a_declaration_or_the_system_list():
    declared = {
        (d.hparam if "/" in d.hparam else f"{d.hparam}/{f.name}")
        for f, d in _declared()
        if d.hparam
    }
    names = {h.name for h in HPARAMS}
    assert declared <= names
    assert names - declared == {
        f"system/{key}" for key in ("strategy", "replicas", "device", "device_kind", "tensorflow")
    }  # from device_info


def test_flag_defaults_are_the_config_defaults():
    assert experiment_flags.config_from_flags(_parse()) == ExperimentConfig()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        [
            "--model=cnn",
            "--conv_filters=8,16",
            "--conv_dropout_rates=0,0.25",
            "--conv_pooling=max",
            "--hidden_units=32",
            "--dropout_rates=0.5",
            "--batch_norm=false",
        ],
        [
            "--learning_rate=0.0003",
            "--lr_schedule=cosine",
            "--seed=0",
            "--augment",
            "--profile_steps=3,9",
            "--data_dir=some/where",
            "--validation_split=0.125",
            "--mixed_precision=mixed_bfloat16",
            "--device=/cpu:0",
            "--nojit_compile",
        ],
    ],
)
def test_flags_to_config_to_flags_txt_to_config_is_the_identity(argv):
    config = experiment_flags.config_from_flags(_parse(*argv))
    again, text = _round_trip(config)
    assert again.to_dict() == {
        **config.to_dict(),
        "data": {
            **config.to_dict()["data"],
            "data_dir": os.path.abspath(config.data.data_dir) if config.data.data_dir else None,
        },
    }
    assert resume_identity(again) == resume_identity(config)
    assert _round_trip(again)[1] == text


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "experiments", "*.flags"))))
def test_every_flagfile_round_trips_through_flags_txt(path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = experiment_flags.config_from_flags(_parse(f"--flagfile={path}"))
    assert _round_trip(config)[0] == config


HOSTILE_TEXT = [
    "e\n--overwrite",
    "e\r--overwrite",
    "e\x85--overwrite",
    "e\u2028--overwrite",
    "e\x0b--overwrite",
    "e ",
    "e\t",
    "e\udcff",  # an argv byte that is not UTF-8
    "--overwrite",
    " --overwrite",
    "#e",
    "e'\"$x",
    "e=--seed=5",
    "--flagfile=/etc/passwd",
]
TEXT_FLAGS = ["experiment", "data_dir", "device"]


@pytest.mark.parametrize("flag", TEXT_FLAGS)
@pytest.mark.parametrize("value", HOSTILE_TEXT)
def test_a_text_value_reads_back_from_flags_txt_exactly_or_is_refused(flag, value):
    try:
        config = experiment_flags.config_from_flags(_parse(f"--{flag}={value}"))
    except (app.UsageError, flags.Error):
        return
    if flag == "data_dir":  # flags.txt records the path absolute
        data = dataclasses.replace(config.data, data_dir=os.path.abspath(value))
        config = dataclasses.replace(config, data=data)
    assert _round_trip(config)[0] == config
    assert flagfiles.one_argument(f"--{flag}={value}")


@pytest.mark.parametrize(
    "value", [v for v in HOSTILE_TEXT if not flagfiles.one_argument(f"--experiment={v}")]
)
def test_a_value_that_is_not_one_flagfile_line_is_refused_naming_the_flag(value):
    with pytest.raises(app.UsageError, match="^experiment must be one line"):
        experiment_flags.config_from_flags(_parse(f"--experiment={value}"))


def test_a_flag_another_family_reads_is_refused_only_when_it_differs_from_its_default():
    defaults = ["--conv_filters=32,64", "--conv_dropout_rates=0.1,0.1", "--conv_kernel_size=3"]
    config = experiment_flags.config_from_flags(_parse(*defaults, "--model=mlp"))
    assert config.model.conv_filters == () and config.model.family == "mlp"
    with pytest.raises(app.UsageError, match="--conv_kernel_size apply only to --model=cnn"):
        experiment_flags.config_from_flags(_parse("--conv_kernel_size=5"))


def test_help_names_the_families_a_flag_belongs_to_and_open_bounds():
    values = flags.FlagValues()
    experiment_flags.define_experiment_flags(values)
    assert values["conv_filters"].help.startswith("--model=cnn: ")
    assert "(each >= 1)" in values["conv_filters"].help
    assert "(in (0, 1))" in values["validation_split"].help
    assert values["model"].parser.enum_values == list(config_lib.MODEL_FAMILIES)
    assert values["dataset"].parser.enum_values == list(config_lib.DATASETS)


def test_identity_is_every_field_declared_part_of_it():
    identity = resume_identity(ExperimentConfig())
    for name, cls in SECTIONS.items():
        expected = {f.name for f, declared in declared_fields(cls) if declared.identity}
        assert set(identity[name]) == expected
    assert "epochs" not in identity["train"] and "seed" in identity["train"]
    assert identity["distribute"] == {"mixed_precision": "none"}


def test_extending_a_run_is_allowed_only_where_no_schedule_depends_on_its_length():
    constant = ExperimentConfig()
    longer = ExperimentConfig(train=config_lib.TrainConfig(epochs=30))
    assert resume_identity(constant) == resume_identity(longer)
    cosine = ExperimentConfig(train=config_lib.TrainConfig(lr_schedule="cosine"))
    cosine_longer = ExperimentConfig(train=config_lib.TrainConfig(lr_schedule="cosine", epochs=30))
    assert resume_identity(cosine) != resume_identity(cosine_longer)


def test_each_refused_flag_names_the_families_that_read_it():
    with pytest.raises(app.UsageError) as refused:
        experiment_flags.config_from_flags(
            _parse("--model=linear", "--hidden_units=32", "--conv_filters=8")
        )
    assert str(refused.value) == (
        "--hidden_units apply only to --model=mlp or --model=cnn; --conv_filters apply only "
        "to --model=cnn, not --model=linear"
    )
