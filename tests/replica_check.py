"""Run as a script (devices must be configured before any TF op): trains the same data
with 1 replica and with 2 mirrored replicas on 2 logical CPUs and prints a JSON report.

Dropout is off so both topologies compute the same function; with synchronized BN
and the loss scaled by the global batch, they should take the same steps up to
float32 summation order.
"""

import dataclasses
import json
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, sys.argv[1])  # the repository root, for tests.helpers

from mnist_research import config as config_lib
from mnist_research.data import pipeline as input_pipeline
from mnist_research.model import mlp as dropout_lib
from mnist_research.training import devices as distribute
from mnist_research.training.loop import Trainer
from tests.helpers import make_digits

STEPS = 20

config = config_lib.ExperimentConfig(
    model=config_lib.ModelConfig(dropout_rates=(0.0, 0.0, 0.0)),
    train=config_lib.TrainConfig(batch_size=64, seed=7, steps_per_loop=STEPS),
    distribute=config_lib.DistributeConfig(strategy="mirrored", num_cpu_devices=2),
)
distribute.configure_devices(config.distribute)
images, labels = make_digits(64 * STEPS, seed=3)


def train(strategy, config):
    tf.keras.utils.set_random_seed(config.train.seed)
    trainer = Trainer(config, strategy)
    train_input = input_pipeline.TrainInput(images, labels, 64, seed=7)
    iterator = iter(
        strategy.distribute_datasets_from_function(lambda ctx: train_input.dataset(1, ctx))
    )
    losses = [trainer.train_steps(iterator, 1).means()["loss"] for _ in range(STEPS)]
    return trainer, losses


# The one-replica reference runs the plain step, as the two replicas do (BatchNormalization:
# XLA cannot compile their step): the same computation, and no XLA compile for a reference.
plain = dataclasses.replace(config, train=dataclasses.replace(config.train, jit_compile=False))
one_trainer, one_losses = train(tf.distribute.OneDeviceStrategy("/cpu:0"), plain)
two_trainer, two_losses = train(distribute.create_strategy(config.distribute), config)

# Dropout on: the same step's seed gives each replica its own masks (the replica id is
# folded in), and each replica's masks are the same on a second call.
strategy = two_trainer.strategy
x = tf.ones((64, 784))


def masked(seed):
    layer = dropout_lib.StatelessDropout(0.3)
    return strategy.experimental_local_results(
        strategy.run(lambda: layer(x, training=True, seed=dropout_lib.replica_seed(seed)))
    )


per_replica = [v.numpy() != 0 for v in masked(tf.constant([7, 1], tf.int64))]
again = [v.numpy() != 0 for v in masked(tf.constant([7, 1], tf.int64))]
dropout_report = {
    "mask_overlap_across_replicas": float((per_replica[0] == per_replica[1]).mean()),
    "masks_repeat": all(np.array_equal(a, b) for a, b in zip(per_replica, again)),
    "drop_fractions": [float(1 - m.mean()) for m in per_replica],
}


# Weights and BN moving statistics.
def checked(model):
    return model.trainable_variables + [
        v for v in model.non_trainable_variables if "moving" in v.path
    ]


replica_max_diff, mirrored = 0.0, 0
for variable in checked(two_trainer.model):
    values = [
        v.numpy()
        for v in two_trainer.strategy.experimental_local_results(
            getattr(variable, "value", variable)
        )
    ]
    mirrored += len(values) == 2
    replica_max_diff = max(replica_max_diff, float(np.max(np.abs(values[0] - values[-1]))))
weight_max_diff = max(
    float(np.max(np.abs(a.numpy() - b.numpy())))
    for a, b in zip(checked(one_trainer.model), checked(two_trainer.model))
)
# Evaluation over sizes whose last batch splits unevenly (101: 37 = 19 + 18) or leaves
# one replica without examples (65: a last batch of 1).
eval_images, eval_labels = make_digits(101, seed=5)
evaluation = {}
for size in (65, 101):
    dataset = input_pipeline.eval_dataset(eval_images[:size], eval_labels[:size], 64)
    totals = [trainer.make_evaluator(dataset)() for trainer in (one_trainer, two_trainer)]
    evaluation[size] = [
        {"count": t.count, "correct": t.sums["accuracy"], "loss_sum": t.sums["loss"]}
        for t in totals
    ]
print(
    json.dumps(
        {
            "evaluation": evaluation,
            "eval_traces": two_trainer._evaluate.experimental_get_tracing_count(),
        }
    )
)
print(
    json.dumps(
        {
            "replicas": two_trainer.strategy.num_replicas_in_sync,
            "checked": len(checked(two_trainer.model)),
            "mirrored": mirrored,
            "replica_max_diff": replica_max_diff,
            "weight_max_diff": weight_max_diff,
            "one_losses": one_losses,
            "two_losses": two_losses,
            "jit_compile": two_trainer.jit_compile,
            **dropout_report,
        }
    )
)
