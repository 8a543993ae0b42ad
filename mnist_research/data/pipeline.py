"""The model's input (uint8 ``[N, 28, 28]`` → float ``[N, 784]`` in [0, 1]) and tf.data pipelines.

Training, evaluation, the export's serving signature, checkpoint loading,
predict and the benchmark all call :func:`to_model_input`, so a model sees the
same numbers whichever path feeds it. Images stay uint8 until after batching;
one vectorised op per batch turns them into model input and one-hot labels.
Training reshuffles every epoch with a permutation derived from ``(seed,
epoch)``, and ``--augment`` seeds each batch's random rotation, zoom and shift
from ``(seed, epoch, batch)``, so a run resumed at epoch k sees exactly the
batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from mnist_research.errors import ConfigError

IMAGE_SHAPE = (28, 28)
NUM_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
NUM_CLASSES = 10

LogitsFn = Callable[[np.ndarray], np.ndarray]

# tf.data's autotuner runs a background thread that an iterator's destructor waits for: at the
# end of every run, deleting the training iterator took 2-4.5 s on a 2-core CPU (the whole
# baseline command is about 22 s). Without it, AUTOTUNE means as many parallel calls as
# cores and the default prefetch buffer, and the baseline MLP's steady epoch was as fast
# (0.62-0.68 s against 0.71 s on 2 cores, 0.91-0.93 s both ways on 1).
WITHOUT_AUTOTUNER = tf.data.Options()
WITHOUT_AUTOTUNER.autotune.enabled = False


def to_model_input(images) -> tf.Tensor:
    """uint8 ``[N, 28, 28]`` (or ``[N, 784]``) → float32 ``[N, 784]`` scaled to [0, 1]."""
    return tf.reshape(tf.cast(images, tf.float32) / 255.0, [-1, NUM_PIXELS])


def batched(
    logits_fn: Callable[[np.ndarray], object], images: np.ndarray, batch_size: int = 2048
) -> np.ndarray:
    """Runs ``logits_fn`` over uint8 images in batches (bounded memory); returns ``[N, C]``."""
    images = np.asarray(images, np.uint8).reshape(-1, *IMAGE_SHAPE)
    chunks = [logits_fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)


def logits_function(model: tf.keras.Model, batch_size: int = 2048) -> LogitsFn:
    """uint8 ``[N, 28, 28]`` → float32 logits ``[N, 10]`` of ``model`` in inference mode."""

    @tf.function(reduce_retracing=True)
    def logits(images):  # float32 whatever dtype a family's head computes in
        outputs = model(to_model_input(images), training=False, return_logits=True)
        return tf.cast(outputs, tf.float32)

    return lambda images: batched(lambda chunk: logits(tf.constant(chunk)), images, batch_size)


def preprocess_batch(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 ``[B, 28, 28]`` and integer ``[B]`` → float ``[B, 784]`` and one-hot ``[B, 10]``."""
    return to_model_input(images), tf.one_hot(tf.cast(labels, tf.int32), NUM_CLASSES)


class TrainInput:
    """The training batches of one or more epochs over uint8 images held in memory once.

    Batches of ``global_batch_size`` (across replicas; an epoch's remainder is
    dropped) are drawn as indices into the images: shuffling indices instead of
    784-byte records keeps per-element work out of the pipeline, which delivers
    an epoch of batches many times faster than training consumes them (see
    ``mnist_research.benchmark``).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        global_batch_size: int,
        seed: int,
        augment: bool = False,
    ):
        if len(images) < global_batch_size:
            raise ConfigError(
                f"batch_size {global_batch_size} is larger than the {len(images)} training examples"
            )
        self.num_examples = len(images)
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.augment = augment
        self._images = tf.constant(images, dtype=tf.uint8)
        self._labels = tf.constant(labels, dtype=tf.uint8)

    def steps_per_epoch(self, num_input_pipelines: int = 1) -> int:
        """Full global batches per epoch, equal on every worker.

        Each of W input pipelines holds at least ``N // W`` examples, ``batch_size // W`` a step.
        """
        per_pipeline_batch = max(1, self.global_batch_size // num_input_pipelines)
        return (self.num_examples // num_input_pipelines) // per_pipeline_batch

    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)

    def dataset(
        self,
        epoch: int,
        input_context: tf.distribute.InputContext | None = None,
        last_epoch: int | None = None,
    ) -> tf.data.Dataset:
        """The batches of ``epoch`` .. ``last_epoch`` (default ``epoch``), each preprocessed.

        One dataset holds every epoch, each exactly the batches of
        :meth:`steps_per_epoch` steps, so a trainer builds one iterator for the
        whole run and the prefetch buffer carries on across epoch boundaries (a new
        dataset an epoch cost ~0.1 s). With an ``input_context`` (from
        ``distribute_datasets_from_function``), each input pipeline takes its own
        shard of every permutation and batches at the per-replica size.
        """
        last_epoch = epoch if last_epoch is None else last_epoch
        if last_epoch < epoch:
            raise ValueError(f"last_epoch {last_epoch} is before epoch {epoch}")
        context = input_context or tf.distribute.InputContext()  # default: 1 pipeline, 1 replica
        pipeline_id, num_pipelines = context.input_pipeline_id, context.num_input_pipelines
        local_replicas = context.num_replicas_in_sync // num_pipelines
        batch_size = context.get_per_replica_batch_size(self.global_batch_size)
        # Exactly what an epoch's steps consume (each step takes one batch per local replica),
        # so the next epoch starts where the trainer expects it.
        num_batches = self.steps_per_epoch(num_pipelines) * local_replicas

        def index_batches(e: np.int64) -> np.ndarray:
            order = self.permutation(int(e))[pipeline_id::num_pipelines]
            return order[: num_batches * batch_size].reshape(num_batches, batch_size)

        def epoch_batches(e):
            index = tf.numpy_function(index_batches, [e], tf.int64, stateful=False)
            index = tf.ensure_shape(index, [num_batches, batch_size])
            ds = tf.data.Dataset.from_tensor_slices(index).enumerate()
            return ds.map(lambda position, batch: (e, position, batch))

        if self.augment:  # imported only here: a run without --augment needs none of it
            from mnist_research.data import augment as augment_lib

        def load(e, position, index):
            batch = tf.gather(self._images, index)
            if self.augment:
                batch = augment_lib.augment_batch(
                    batch, augment_lib.batch_seed(self.seed, e, pipeline_id, position)
                )
            return preprocess_batch(batch, tf.gather(self._labels, index))

        # One epoch's order is built when the pipeline reaches it: memory and start-up
        # time do not grow with the number of epochs.
        ds = tf.data.Dataset.range(epoch, last_epoch + 1).flat_map(epoch_batches)
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE).with_options(WITHOUT_AUTOTUNER)

    def distributed(
        self,
        strategy: tf.distribute.Strategy,
        first_epoch: int,
        last_epoch: int,
        steps_per_epoch: int,
    ):
        """One distributed iterator over the batches of epochs ``first_epoch`` .. ``last_epoch``.

        Each input pipeline's dataset holds exactly ``steps_per_epoch`` steps an
        epoch; were the loop to take another count, every later epoch would start
        in the wrong place, so a mismatch is an error here.
        """

        def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            steps = self.steps_per_epoch(context.num_input_pipelines)
            if steps != steps_per_epoch:
                raise ValueError(
                    f"{context.num_input_pipelines} input pipeline(s) hold {steps} "
                    f"steps an epoch, the loop takes {steps_per_epoch}"
                )
            return self.dataset(first_epoch, context, last_epoch)

        return iter(strategy.distribute_datasets_from_function(dataset_fn))


def eval_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Batches every example once, in order, keeping the last partial batch."""
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    ds = ds.batch(batch_size, drop_remainder=False)
    ds = ds.map(preprocess_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
