"""Bad values are refused up front with one line: seeds, devices, TF_CONFIG, types (issue 14)."""

import pytest
import tensorflow as tf
from absl import flags

from mnist_research import config as config_lib
from mnist_research.config import DistributeConfig, ExperimentConfig, ModelConfig, TrainConfig
from mnist_research.errors import ConfigError, run_guarded
from mnist_research.training import devices, strategies


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: TrainConfig(seed=-1), "seed must be in"),
        (lambda: TrainConfig(seed=2**32), "seed must be in"),
        (lambda: TrainConfig(epochs=2.5), "epochs must be int"),
        (lambda: TrainConfig(epochs=True), "epochs must be int"),
        (lambda: TrainConfig(eval_batch_size=2**63), "eval_batch_size must be below 2[*][*]63"),
        (lambda: ModelConfig(hidden_units=(256, 10**20)), "hidden_units must be below 2[*][*]63"),
        (lambda: TrainConfig(learning_rate="fast"), "learning_rate must be a finite number"),
        (lambda: TrainConfig(learning_rate=float("inf")), "learning_rate must be a finite number"),
        (
            lambda: TrainConfig(learning_rate=float("nan")),
            "learning_rate must be a finite number, got nan",
        ),
        (lambda: ModelConfig(hidden_units=(256, 12.5)), "hidden_units must be a list of ints"),
        (lambda: ModelConfig(batch_norm="yes"), "batch_norm must be bool"),
        (lambda: DistributeConfig(device="banana"), "device must name a device"),
        (lambda: DistributeConfig(device="/gpu:x"), "device must name a device"),
        (lambda: ExperimentConfig(experiment=""), "experiment must be"),
    ],
)
def test_bad_values_are_refused_naming_the_field(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_good_edge_values_pass():
    assert TrainConfig(seed=0).seed == 0 and TrainConfig(seed=2**32 - 1).seed == 2**32 - 1
    assert TrainConfig(learning_rate=1).learning_rate == 1.0
    for name in (
        "/cpu:0",
        "/GPU:1",
        "gpu:0",
        "/device:CPU:0",
        "/job:worker/replica:0/task:1/device:GPU:0",
    ):
        assert DistributeConfig(device=name).device == name


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seed=-1"], "not an integer in the range [0, 4294967295]"),
        (["--seed=4294967296"], "not an integer in the range [0, 4294967295]"),
        (["--device=banana"], "must name a device"),
    ],
)
def test_bad_flag_values_fail_at_parse_time(argv, message):
    from mnist_research import train

    values = flags.FlagValues()
    train.define_flags(values)
    with pytest.raises(flags.IllegalFlagValueError, match=message.replace("[", r"\[")):
        values(["prog", *argv])


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"cluster": ["a:1"]}', "cluster"),
        ('{"cluster": {"worker": "a:1"}}', "cluster"),
        ('{"cluster": {"worker": ["a:1"]}, "task": "worker"}', "task"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
            "not in its cluster",
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
            "not in its cluster",
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}',
            "not in its cluster",
        ),
    ],
)
def test_malformed_tf_config_is_a_config_error(monkeypatch, tf_config, message):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    for read in (
        strategies.parse_tf_config,
        devices.is_chief,
        devices.num_workers,
        devices.worker_id,
    ):
        with pytest.raises(ConfigError, match=message):
            read()
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        devices.create_strategy(DistributeConfig(strategy="default"))


def test_well_formed_tf_config_reads(monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG",
        '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}',
    )
    assert not devices.is_chief() and devices.num_workers() == 2
    assert devices.worker_id() == "worker_1"
    monkeypatch.setenv("TF_CONFIG", "")
    assert devices.is_chief() and devices.num_workers() == 1


def test_a_device_the_machine_lacks_is_refused():
    with pytest.raises(
        ConfigError,
        match=r"--device=/gpu:7: no such device on this machine "
        r"\(it has /cpu:0",
    ):
        devices.create_strategy(DistributeConfig(strategy="one_device", device="/gpu:7"))
    strategy = devices.create_strategy(DistributeConfig(strategy="one_device", device="/cpu:0"))
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)


def test_a_model_too_large_for_memory_is_refused_before_allocating(monkeypatch):
    config = ExperimentConfig(
        model=ModelConfig(hidden_units=(50_000, 50_000), dropout_rates=(0.1, 0.1))
    )
    assert devices.num_parameters(config.model) == (
        784 * 50_000 + 4 * 50_000 + 50_000 * 50_000 + 4 * 50_000 + 50_000 * 10 + 10
    )
    monkeypatch.setattr(devices, "available_memory", lambda: 8 * 2**30)
    with pytest.raises(
        ConfigError,
        match=r"2,540,100,010 parameters, about 37.9 GiB .* only "
        r"8.0 GiB of memory is available",
    ):
        devices.check_model_fits(config, on_gpu=False)
    devices.check_model_fits(config, on_gpu=True)  # the GPU's memory is TF's to judge
    devices.check_model_fits(ExperimentConfig(), on_gpu=False)


@pytest.mark.parametrize("family", list(config_lib.MODEL_FAMILIES))
def test_parameter_count_matches_keras_for_every_family(family):
    from mnist_research.model import registry

    models = [ModelConfig(family=family)]
    if "dense" in config_lib.MODEL_FAMILIES[family].reads:
        models.append(
            ModelConfig(family=family, hidden_units=(7, 5), dropout_rates=(0, 0), batch_norm=False)
        )
    for model in models:
        assert devices.num_parameters(model) == registry.create(model).count_params()


def test_counting_the_parameters_leaves_the_initial_weights_unchanged():
    from mnist_research.model import registry

    def weights(count_first: bool) -> str:
        tf.keras.utils.set_random_seed(5)
        if count_first:
            devices.num_parameters(ModelConfig())
        return registry.weights_fingerprint(registry.create(ModelConfig()))

    assert weights(count_first=True) == weights(count_first=False)


def test_the_memory_check_counts_the_optimizer_slots(monkeypatch):
    params = devices.num_parameters(ModelConfig())
    # Room for the weights, their gradients and one slot each: SGD with momentum fits, Adam not.
    monkeypatch.setattr(devices, "available_memory", lambda: params * 4 * 3)
    sgd = TrainConfig(optimizer="sgd", momentum=0.9)
    devices.check_model_fits(ExperimentConfig(train=sgd), on_gpu=False)
    with pytest.raises(ConfigError, match="to train with --optimizer=adam, but only"):
        devices.check_model_fits(ExperimentConfig(), on_gpu=False)


def test_out_of_memory_is_one_line():
    with pytest.raises(ConfigError, match="out of memory with a 244,106-parameter model"):
        with devices.out_of_memory_as_error(ExperimentConfig()):
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor\n...")
    assert config_lib.MAX_SEED == 2**32 - 1


def test_an_error_naming_a_value_with_a_line_break_is_still_one_line(capsys):
    def fail():
        raise ConfigError("experiment 'e\n--overwrite' is refused")

    assert run_guarded(fail) == 1
    assert capsys.readouterr().err == "error: experiment 'e\\n--overwrite' is refused\n"
