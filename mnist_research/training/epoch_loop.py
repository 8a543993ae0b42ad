"""The outer loop: train an epoch, validate, summarize, checkpoint; repeat.

The inner loop (many optimizer steps per ``tf.function`` call) lives in
:class:`~mnist_research.training.trainer.Trainer`; this module decides when to
train, evaluate, write summaries and save, and when to stop early
(``best_epoch.should_stop`` on the validation history, so a resumed run
decides exactly as an uninterrupted one).
"""

from __future__ import annotations

import os
import sys
import time

import tensorflow as tf
from absl import logging

from mnist_research import files, interrupts, logs
from mnist_research.data import pipeline
from mnist_research.rundir import layout
from mnist_research.training import best_epoch
from mnist_research.training import history as history_lib
from mnist_research.training import summaries as summaries_lib
from mnist_research.training.metric_sums import Totals
from mnist_research.training.run_context import RunContext
from mnist_research.training.trainer import Trainer

# Images in the fixed batch whose gradients the per-epoch histograms show.
GRADIENT_BATCH = 1024


def run_epochs(
    run: RunContext, train_input: pipeline.TrainInput, steps_per_epoch: int, verbose: bool
) -> None:
    """Trains from the restored epoch to ``config.train.epochs``, checkpointing each epoch.

    Stops early once validation accuracy has not improved for
    ``config.train.early_stopping_patience`` epochs; the best epoch's weights
    are captured into the checkpointed ``BestWeights`` whenever it improves.
    """
    config, trainer, datasets = run.config, run.trainer, run.datasets
    evaluate_val = trainer.make_evaluator(
        pipeline.eval_dataset(datasets.x_val, datasets.y_val, config.train.eval_batch_size)
    )
    gradients = (
        trainer.make_gradient_fn(
            pipeline.eval_dataset(
                datasets.x_train[:GRADIENT_BATCH], datasets.y_train[:GRADIENT_BATCH], GRADIENT_BATCH
            )
        )
        if config.train.histograms
        else None
    )
    profiler = summaries_lib.Profiler(
        config.train.profile_steps, os.path.join(run.run_dir, "train"), run.chief
    )
    first = run.epochs_done + 1
    batches = None  # Built at the first epoch that trains: none when every epoch is done.
    for epoch in range(first, config.train.epochs + 1):
        interrupts.check()  # SIGINT/SIGTERM: stop between epochs, after the checkpoint
        if _stop_early(run):
            break
        if batches is None:
            batches = training_batches(
                trainer, train_input, epoch, config.train.epochs, steps_per_epoch
            )
        train_totals, seconds = train_epoch(
            trainer,
            batches,
            steps_per_epoch,
            run.summaries,
            verbose and run.chief,
            profiler,
            trace=epoch == 1,
        )
        val_totals = evaluate_val()
        history_lib.append(run.history, train_totals, val_totals, seconds)
        logging.info(
            "epoch %d/%d  %.2fs  loss %.4f  accuracy %.4f  val_loss %.4f  val_accuracy %.4f",
            epoch,
            config.train.epochs,
            seconds,
            train_totals.loss,
            train_totals.accuracy,
            val_totals.loss,
            val_totals.accuracy,
        )
        _epoch_summaries(run, epoch, train_totals, val_totals, seconds, gradients)
        if best_epoch.improved(run.history["val_accuracy"]):
            run.state.best.capture()
        trainer.epoch.assign(epoch)
        run.state.save(epoch, run.history)
        if run.chief:
            files.write_json(
                os.path.join(run.run_dir, layout.METRICS_FILE),
                history_lib.run_metrics(run.history, run.info, None, finished=False),
            )
    profiler.stop()


def _stop_early(run: RunContext) -> bool:
    """Whether the history so far says to stop (and logs why)."""
    val_accuracy = run.history["val_accuracy"]
    patience = run.config.train.early_stopping_patience
    if not best_epoch.should_stop(val_accuracy, patience):
        return False
    best = best_epoch.best_epoch(val_accuracy)
    logging.info(
        "Early stopping after epoch %d: validation accuracy has not improved for %d "
        "epochs (best %.4f at epoch %d)",
        len(val_accuracy),
        patience,
        val_accuracy[best - 1],
        best,
    )
    return True


def _epoch_summaries(
    run: RunContext, epoch: int, train: Totals, val: Totals, seconds: float, gradients
) -> None:
    run.summaries.epoch_scalars(
        epoch,
        {
            "loss": train.loss,
            "accuracy": train.accuracy,
            "learning_rate": run.trainer.learning_rate,
            "examples_per_second": train.count / seconds,
            "seconds": seconds,
        },
        {"loss": val.loss, "accuracy": val.accuracy},
    )
    if gradients is not None and run.config.train.histograms_due(epoch):
        run.summaries.histograms(
            epoch, summaries_lib.model_histograms(run.trainer.model, gradients())
        )


def training_batches(
    trainer: Trainer,
    train_input: pipeline.TrainInput,
    first_epoch: int,
    last_epoch: int,
    steps_per_epoch: int,
):
    """One distributed iterator over the batches of epochs ``first_epoch`` .. ``last_epoch``.

    Each input pipeline's dataset holds exactly ``steps_per_epoch`` steps an
    epoch; were the trainer to take another count, every later epoch would
    start in the wrong place, so a mismatch is an error here.
    """

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        steps = train_input.steps_per_epoch(context.num_input_pipelines)
        if steps != steps_per_epoch:
            raise ValueError(
                f"{context.num_input_pipelines} input pipeline(s) hold {steps} "
                f"steps an epoch, the loop takes {steps_per_epoch}"
            )
        return train_input.dataset(first_epoch, context, last_epoch)

    return iter(trainer.strategy.distribute_datasets_from_function(dataset_fn))


def train_epoch(
    trainer: Trainer,
    batches,
    steps_per_epoch: int,
    summaries: summaries_lib.Summaries,
    verbose: bool,
    profiler: summaries_lib.Profiler | None = None,
    trace: bool = False,
) -> tuple[Totals, float]:
    """One pass over the training data: the next ``steps_per_epoch`` steps of ``batches``.

    ``batches`` is the iterator of :func:`training_batches`; the loop takes
    ``steps_per_loop`` steps per call. ``verbose`` shows a progress bar where
    stdout redraws in place (a terminal, a notebook); it shows the running
    means of the epoch so far, the numbers the epoch line reports when the
    epoch ends, and is erased then. Written to a file or pipe, the run logs
    one line per epoch and nothing else. ``trace`` records the graph of the
    first call (TensorBoard's Graphs tab).
    """
    config = trainer.config.train
    progbar = _progress_bar(steps_per_epoch) if verbose and logs.interactive_output() else None
    totals = Totals()
    done = 0
    start = time.perf_counter()
    while done < steps_per_epoch:
        num_steps = min(config.steps_per_loop, steps_per_epoch - done)
        if profiler:
            profiler.before(trainer.step, num_steps)
        if trace:
            chunk = summaries.record_graph(
                "train_steps", lambda: trainer.step, trainer.train_steps, batches, num_steps
            )
            trace = False
        else:
            chunk = trainer.train_steps(batches, num_steps)
        interrupts.check()  # SIGINT/SIGTERM: stop at this step boundary
        totals.add(chunk)
        done += num_steps
        step = trainer.step
        if profiler:
            profiler.after(step)
        if step // config.summary_every_steps != (step - num_steps) // config.summary_every_steps:
            summaries.step_scalars(step, {"loss": chunk.loss, "accuracy": chunk.accuracy})
        if progbar:
            # Stateful: Progbar shows these running epoch means as given, not averaged again.
            progbar.update(
                done, [("loss", totals.loss), ("accuracy", totals.accuracy)], finalize=False
            )
    if progbar:
        sys.stdout.write("\r\x1b[K")  # the epoch line that follows replaces the bar
        sys.stdout.flush()
    return totals, time.perf_counter() - start


def _progress_bar(steps_per_epoch: int) -> tf.keras.utils.Progbar:
    return tf.keras.utils.Progbar(
        steps_per_epoch, unit_name="step", stateful_metrics=["loss", "accuracy"]
    )
