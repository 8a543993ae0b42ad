"""The flags that define an experiment, and their translation into a config.

Commands that train (``train``, ``benchmark``) call :func:`define_experiment_flags`
when they run; nothing is defined at import time. A flagfile under
``experiments/`` sets these flags. Bounds and choices are checked by absl at
parse time; cross-field rules (e.g. as many dropout rates as hidden layers) are
checked by the config dataclasses and reported as a usage error.
"""

from __future__ import annotations

from typing import Callable

from absl import app, flags

from mnist_research import config as config_lib

FLAGS = flags.FLAGS

# The flags that define an experiment, in the order flags.txt lists them.
EXPERIMENT_FLAGS: list[str] = []


def _define(fv: flags.FlagValues, definer, name: str, *args, **kwargs) -> None:
    definer(name, *args, flag_values=fv, **kwargs)
    if name not in EXPERIMENT_FLAGS:
        EXPERIMENT_FLAGS.append(name)


def _define_data_flags(fv: flags.FlagValues) -> None:
    _define(fv, flags.DEFINE_string, "experiment", "baseline",
            "Experiment name (used in run dir names).")
    _define(fv, flags.DEFINE_enum, "dataset", "mnist", list(config_lib.DATASETS),
            "Which dataset.")
    _define(fv, flags.DEFINE_string, "data_dir", None,
            "Folder with <dataset>.npz or the four IDX files (.gz or raw), or an .npz path. "
            "Default: download with tf.keras.datasets.")
    _define(fv, flags.DEFINE_float, "validation_split", 0.2,
            "Fraction of training data held out for validation (the last fraction, as Keras "
            "does).")
    _define(fv, flags.DEFINE_integer, "limit_train", 0,
            "Use only the first N training examples (0: all).", lower_bound=0)
    _define(fv, flags.DEFINE_integer, "limit_test", 0,
            "Use only the first N test examples (0: all).", lower_bound=0)


# Flags that only --model=cnn reads; giving one with another model is a usage error.
CNN_FLAGS = ("conv_filters", "conv_dropout_rates", "conv_kernel_size", "conv_pooling")


def _define_model_flags(fv: flags.FlagValues) -> None:
    _define(fv, flags.DEFINE_enum, "model", "mlp", list(config_lib.MODEL_FAMILIES),
            "Model family: mlp (dense blocks; the seed recipe) or cnn (conv blocks, then "
            "dense blocks).")
    _define(fv, flags.DEFINE_list, "hidden_units", ["256", "128", "64"],
            "Widths of the dense hidden blocks (for --model=cnn: those after the conv blocks).")
    _define(fv, flags.DEFINE_list, "dropout_rates", ["0.3", "0.3", "0.2"],
            "Dropout after each dense block.")
    _define(fv, flags.DEFINE_boolean, "batch_norm", True,
            "BatchNormalization in every block.")
    _define(fv, flags.DEFINE_list, "conv_filters", ["32", "64"],
            "--model=cnn: filters of each conv block (each halves the resolution).")
    _define(fv, flags.DEFINE_list, "conv_dropout_rates", ["0.1", "0.1"],
            "--model=cnn: dropout after each conv block.")
    _define(fv, flags.DEFINE_integer, "conv_kernel_size", 3,
            "--model=cnn: kernel side of every convolution (odd).", lower_bound=1)
    _define(fv, flags.DEFINE_enum, "conv_pooling", "stride", list(config_lib.CONV_POOLING),
            "--model=cnn: how a conv block halves the resolution: stride (stride-2 conv; "
            "fast on CPUs) or max (stride-1 conv, then 2x2 max-pool).")


def _define_training_flags(fv: flags.FlagValues) -> None:
    _define(fv, flags.DEFINE_integer, "epochs", 15, "Training epochs.", lower_bound=1)
    _define(fv, flags.DEFINE_integer, "batch_size", 128, "Global batch size (across replicas).",
            lower_bound=1)
    _define(fv, flags.DEFINE_integer, "eval_batch_size", 2000,
            "Global batch size of the validation and test passes (speed only; results do "
            "not depend on it).", lower_bound=1)
    _define(fv, flags.DEFINE_float, "learning_rate", 1e-3, "Adam (initial) learning rate.")
    _define(fv, flags.DEFINE_enum, "lr_schedule", "constant", list(config_lib.LR_SCHEDULES),
            "constant; cosine (to 0 over training); step (x0.1 at 50% and 75% of the steps).")
    _define(fv, flags.DEFINE_integer, "seed", 42,
            "Seed for initialisation, shuffling and dropout.", lower_bound=0,
            upper_bound=config_lib.MAX_SEED)
    _define(fv, flags.DEFINE_boolean, "deterministic", False,
            "Enable TF op determinism (bit-identical reruns on one machine; slower).")
    _define(fv, flags.DEFINE_integer, "steps_per_loop", 50,
            "Training steps per tf.function call (1 = one call per batch).", lower_bound=1)
    _define(fv, flags.DEFINE_integer, "summary_every_steps", 100,
            "Write step-level training scalars about every N steps.", lower_bound=1)
    _define(fv, flags.DEFINE_boolean, "fused_adam", True,
            "Apply Adam with TF's fused kernel (same update rule as Keras Adam; faster).")
    _define(fv, flags.DEFINE_boolean, "jit_compile", True,
            "Compile the per-replica train step with XLA (faster on this CPU; where XLA "
            "cannot compile it, the plain step runs and the log says why). "
            "--nojit_compile --steps_per_loop=1 is the plain, readable path.")
    _define(fv, flags.DEFINE_boolean, "histograms", True,
            "Write weight, BN-statistic and gradient histograms to TensorBoard.")
    _define(fv, flags.DEFINE_integer, "histogram_every_epochs", 5,
            "Write the histograms after every N-th epoch and after the last one.",
            lower_bound=1)
    _define(fv, flags.DEFINE_list, "profile_steps", [],
            "START,STOP: record a TF profile for these optimizer steps (view it in "
            "TensorBoard's Profile tab; needs `pip install tensorboard-plugin-profile`).")
    _define(fv, flags.DEFINE_boolean, "augment", False,
            "Randomly rotate, zoom and translate training images (seeded per seed, epoch and "
            "batch); validation and test images are never augmented.")
    _define(fv, flags.DEFINE_integer, "early_stopping_patience", 0,
            "Stop when validation accuracy has not improved for N epochs (0: off).",
            lower_bound=0)
    _define(fv, flags.DEFINE_boolean, "restore_best", False,
            "Test and export the weights of the best-validation-accuracy epoch (kept in "
            "checkpoints/best/) instead of the last epoch's.")


def _define_distribution_flags(fv: flags.FlagValues) -> None:
    _define(fv, flags.DEFINE_enum, "strategy", "auto", list(config_lib.STRATEGIES),
            "auto: mirrored if GPUs are visible, else default; one_device; mirrored; "
            "multi_worker (TF_CONFIG).")
    _define(fv, flags.DEFINE_string, "device", None,
            "Device for --strategy=one_device (/cpu:0, /gpu:0).")
    flags.register_validator("device", config_lib.is_device_name,
                             "must name a device such as /cpu:0 or /gpu:1", flag_values=fv)
    _define(fv, flags.DEFINE_integer, "num_cpu_devices", 1,
            "Split the CPU into N logical devices (lets --strategy=mirrored run on a CPU).",
            lower_bound=1)
    _define(fv, flags.DEFINE_enum, "mixed_precision", "none", list(config_lib.MIXED_PRECISION),
            "Keras mixed-precision policy (GPUs).")


def define_experiment_flags(fv: flags.FlagValues = FLAGS) -> None:
    """Defines the experiment flags (data, model, training, distribution) on ``fv``."""
    _define_data_flags(fv)
    _define_model_flags(fv)
    _define_training_flags(fv)
    _define_distribution_flags(fv)


def _parse_list(fv: flags.FlagValues, name: str, cast: Callable) -> tuple:
    try:
        return tuple(cast(v) for v in fv[name].value)
    except ValueError:
        raise app.UsageError(f"--{name}: expected a comma-separated list of numbers, "
                             f"got {','.join(fv[name].value)}") from None


def _model_config(fv: flags.FlagValues) -> config_lib.ModelConfig:
    """The model settings; the conv flags only for ``--model=cnn``.

    A conv flag given with another model is an error rather than ignored: the
    run would otherwise silently train something other than what was asked for.
    """
    family = fv.model
    conv = {}
    if family == "cnn":
        conv = dict(conv_filters=_parse_list(fv, "conv_filters", int),
                    conv_dropout_rates=_parse_list(fv, "conv_dropout_rates", float),
                    conv_kernel_size=fv.conv_kernel_size, conv_pooling=fv.conv_pooling)
    else:
        given = [f"--{name}" for name in CNN_FLAGS if fv[name].present]
        if given:
            raise app.UsageError(f"{', '.join(given)} apply only to --model=cnn, not "
                                 f"--model={family}")
    return config_lib.ModelConfig(family=family,
                                  hidden_units=_parse_list(fv, "hidden_units", int),
                                  dropout_rates=_parse_list(fv, "dropout_rates", float),
                                  batch_norm=fv.batch_norm, **conv)


def config_from_flags(fv: flags.FlagValues = FLAGS) -> config_lib.ExperimentConfig:
    """Builds the validated config; raises ``app.UsageError`` on bad values."""
    try:
        return config_lib.ExperimentConfig(
            experiment=fv.experiment,
            data=config_lib.DataConfig(
                dataset=fv.dataset, data_dir=fv.data_dir,
                validation_split=fv.validation_split,
                limit_train=fv.limit_train, limit_test=fv.limit_test),
            model=_model_config(fv),
            train=config_lib.TrainConfig(
                epochs=fv.epochs, batch_size=fv.batch_size,
                eval_batch_size=fv.eval_batch_size,
                learning_rate=fv.learning_rate, lr_schedule=fv.lr_schedule,
                seed=fv.seed, histograms=fv.histograms,
                histogram_every_epochs=fv.histogram_every_epochs,
                profile_steps=_parse_list(fv, "profile_steps", int),
                deterministic=fv.deterministic, steps_per_loop=fv.steps_per_loop,
                summary_every_steps=fv.summary_every_steps, fused_adam=fv.fused_adam,
                jit_compile=fv.jit_compile,
                augment=fv.augment, early_stopping_patience=fv.early_stopping_patience,
                restore_best=fv.restore_best),
            distribute=config_lib.DistributeConfig(
                strategy=fv.strategy, device=fv.device,
                num_cpu_devices=fv.num_cpu_devices, mixed_precision=fv.mixed_precision))
    except ValueError as e:
        raise app.UsageError(str(e)) from None


def flagfile_text(fv: flags.FlagValues = FLAGS) -> str:
    """A flagfile that reproduces the experiment flags as resolved.

    The conv flags are left out unless ``--model=cnn`` (another model rejects them).
    """
    lines = ["# Resolved flags of this run; rerun with --flagfile=flags.txt"]
    for name in EXPERIMENT_FLAGS:
        if name in CNN_FLAGS and fv.model != "cnn":
            continue
        serialized = fv[name].serialize()
        if serialized:
            lines.append(serialized)
    return "\n".join(lines) + "\n"
