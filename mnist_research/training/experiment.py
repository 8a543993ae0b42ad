"""``train_and_evaluate``: one run from data to metrics, checkpoints and reports.

The entry point (``train.py``) turns flags into an :class:`ExperimentConfig`
and calls :func:`train_and_evaluate`; tests call it directly, injecting tiny
data (``datasets=``) or a 2-replica strategy (``strategy=``).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time
from typing import Any, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from mnist_research.data import sources as data_lib
from mnist_research.training import devices as distribute
from mnist_research.analysis import metrics as evaluation
from mnist_research.inference import export as export_lib
from mnist_research.data import pipeline as input_pipeline
from mnist_research.model import mlp as model_lib
from mnist_research.analysis import figures as reports
from mnist_research.training import run_dir as run_dir_lib
from mnist_research.training import summaries as summaries_lib
from mnist_research.config import ExperimentConfig
from mnist_research.errors import RunDirError
from mnist_research.training.trainer import Totals, Trainer

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds",
                "examples_per_second")


def set_seeds(config: ExperimentConfig) -> None:
    """Seeds Python, NumPy and TF; optionally turns on op determinism."""
    tf.keras.utils.set_random_seed(config.train.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()


class _RunState:
    """Checkpointed training state: model, optimizer, epoch counter and history.

    The history travels inside the checkpoint (a string variable), so the
    checkpoint and the per-epoch history can never disagree after a kill.
    """

    def __init__(self, trainer: Trainer, checkpoint_dir: str, chief: bool, max_to_keep: int):
        self.history_json = tf.Variable("{}", dtype=tf.string, trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            optimizer=trainer.optimizer, epoch=trainer.epoch, history=self.history_json,
            model=trainer.model)
        self.chief_dir = checkpoint_dir
        self.chief = chief
        self.manager = tf.train.CheckpointManager(self.checkpoint, checkpoint_dir,
                                                  max_to_keep=max_to_keep) if chief else None

    def restore(self) -> dict[str, list[float]]:
        latest = tf.train.latest_checkpoint(self.chief_dir)
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info("Restored %s", latest)
        history = json.loads(self.history_json.numpy().decode("utf-8"))
        return {key: list(history.get(key, [])) for key in HISTORY_KEYS}

    def save(self, epoch: int, history: dict[str, list[float]]) -> None:
        """Saves ``ckpt-<epoch>``; the ``checkpoint`` state file moves to it only once
        every file is written, so a failed or killed save leaves the last good one as latest.

        Raises:
          RunDirError: the save failed (disk full, permissions); its partial files
            are removed.
        """
        self.history_json.assign(json.dumps(history))
        try:
            if self.chief:
                self.manager.save(checkpoint_number=epoch)
            else:  # Every worker must take part in saving (GUIDE pitfall 8).
                temp_dir = os.path.join(self.chief_dir, f".{distribute.worker_id()}-tmp")
                self.checkpoint.write(os.path.join(temp_dir, "ckpt"))
                shutil.rmtree(temp_dir, ignore_errors=True)
        except (OSError, tf.errors.OpError) as e:
            partial = (glob.glob(os.path.join(self.chief_dir, f"ckpt-{epoch}[._]*"))
                       if self.chief else [temp_dir])
            for path in partial:
                if os.path.isdir(path):  # TF's sharded save writes into ckpt-N_temp/
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            latest = tf.train.latest_checkpoint(self.chief_dir) or "none"
            reason = getattr(e, "message", None) or getattr(e, "strerror", None) or str(e)
            raise RunDirError(f"{self.chief_dir}: could not save the checkpoint of epoch "
                              f"{epoch} ({reason.splitlines()[0]}); the latest checkpoint is "
                              f"still {os.path.basename(latest)}") from None


def train_and_evaluate(config: ExperimentConfig, run_dir: Optional[str] = None, *,
                       datasets: Optional[data_lib.Splits] = None,
                       strategy: Optional[tf.distribute.Strategy] = None,
                       flagfile_text: str = "", source: str = "injected data",
                       verbose: bool = True) -> dict[str, Any]:
    """Trains, evaluates and writes everything a run produces.

    Args:
      config: the experiment.
      run_dir: where outputs go; ``None`` picks ``runs/<experiment>-<device>-<time>``.
      datasets: pre-split uint8 data; ``None`` loads what ``config.data`` names.
      strategy: a strategy to use; ``None`` builds one from ``config.distribute``
        (devices must not be initialised yet if that needs logical CPUs).
      flagfile_text: the flagfile saved as ``flags.txt``.
      source: a description of injected data, for the log.
      verbose: show a progress bar.

    Returns:
      The metrics dict also written to ``metrics.json``.

    Raises:
      MnistResearchError subclasses for bad data, settings or run dirs, and
      NonFiniteLossError when the loss diverges.
    """
    if strategy is None:
        distribute.configure_devices(config.distribute)
        strategy = distribute.create_strategy(config.distribute)
    set_seeds(config)
    if datasets is None:
        raw = data_lib.load(config.data)
        datasets, source = data_lib.split(raw, config.data), raw.source
    data_lib.log_description(datasets, source)

    info = distribute.device_info(strategy)
    run_dir = run_dir or run_dir_lib.default_run_dir(config.experiment,
                                                     distribute.device_tag(info))
    chief = distribute.is_chief()
    run_dir_lib.prepare(run_dir, config)
    done = run_dir_lib.completed_epochs(run_dir)
    if done >= config.train.epochs:
        logging.info("%s is complete (%d epochs); nothing to do. Use a new --run_dir or "
                     "--overwrite to train again.", run_dir, done)
        return run_dir_lib.read_json(os.path.join(run_dir, run_dir_lib.METRICS_FILE))
    if chief:
        for path in run_dir_lib.remove_stale_temporaries(run_dir):
            logging.info("Removed %s, left half-written by an interrupted run", path)
        run_dir_lib.save_config(run_dir, config, flagfile_text)
    logging.info("Run dir: %s | %s x%d, %s (%s)", run_dir, info["strategy"],
                 info["num_replicas"], info["device_name"], info["device_kind"])

    train_input = input_pipeline.TrainInput(datasets.x_train, datasets.y_train,
                                            config.train.batch_size, config.train.seed)
    workers = distribute.num_workers() if isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy) else 1
    steps_per_epoch = train_input.steps_per_epoch(workers)
    trainer = Trainer(config, strategy, steps_per_epoch)
    state = _RunState(trainer, os.path.join(run_dir, "checkpoints"), chief,
                      config.train.max_to_keep)
    history = state.restore()
    if chief:
        dropped = summaries_lib.prune_after(run_dir, int(trainer.epoch.numpy()), trainer.step)
        if dropped:
            logging.info("Dropped %d TensorBoard events written after the last checkpoint",
                         dropped)
    summaries = summaries_lib.Summaries(run_dir) if chief else summaries_lib.NullSummaries()
    fresh = not history["loss"]
    if fresh:
        summaries.text("config/flags", "```\n" + (flagfile_text or "(none)") + "\n```")
        summaries.hparams(summaries_lib.hparams_of(config, info))

    evaluate_val = trainer.make_evaluator(input_pipeline.eval_dataset(
        datasets.x_val, datasets.y_val, config.train.batch_size))
    gradients = trainer.make_gradient_fn(input_pipeline.eval_dataset(
        datasets.x_train[:1024], datasets.y_train[:1024], 1024)) \
        if config.train.histograms else None
    profiler = summaries_lib.Profiler(config.train.profile_steps,
                                      os.path.join(run_dir, "train"), chief)

    for epoch in range(int(trainer.epoch.numpy()) + 1, config.train.epochs + 1):
        train_totals, seconds = train_epoch(trainer, train_input, epoch, steps_per_epoch,
                                             summaries, verbose and chief, profiler,
                                             trace=fresh and epoch == 1)
        val_totals = evaluate_val()
        _append(history, train_totals, val_totals, seconds)
        logging.info("epoch %d/%d  %.2fs  loss %.4f  accuracy %.4f  val_loss %.4f  "
                     "val_accuracy %.4f", epoch, config.train.epochs, seconds,
                     train_totals.loss, train_totals.accuracy, val_totals.loss,
                     val_totals.accuracy)
        summaries.epoch_scalars(
            epoch,
            {"loss": train_totals.loss, "accuracy": train_totals.accuracy,
             "learning_rate": trainer.learning_rate,
             "examples_per_second": train_totals.count / seconds, "seconds": seconds},
            {"loss": val_totals.loss, "accuracy": val_totals.accuracy})
        if gradients is not None:
            summaries.histograms(epoch,
                                 summaries_lib.model_histograms(trainer.model, gradients()))
        trainer.epoch.assign(epoch)
        state.save(epoch, history)
        if chief:
            run_dir_lib.write_json(os.path.join(run_dir, run_dir_lib.METRICS_FILE),
                                   _metrics(history, info, None, finished=False))
    profiler.stop()

    evaluate_test = trainer.make_evaluator(input_pipeline.eval_dataset(
        datasets.x_test, datasets.y_test, config.train.batch_size))
    test_totals = evaluate_test()
    metrics = _metrics(history, info, test_totals, finished=True)
    metrics["weights_sha256"] = model_lib.weights_fingerprint(trainer.model)
    logging.info("Final weights sha256 %s (worker %s)", metrics["weights_sha256"],
                 distribute.worker_id())
    _export(trainer.model, run_dir, chief)
    if chief:
        logits = trainer.predict_logits(datasets.x_test)
        test_summary = evaluation.summarize(datasets.y_test, logits,
                                            config.model.num_classes)
        metrics.update(per_class=test_summary["per_class"],
                       confusion_matrix=test_summary["confusion_matrix"])
        figures = reports.write_reports(os.path.join(run_dir, "reports"), history,
                                        datasets.x_test, datasets.y_test,
                                        evaluation.softmax(logits), test_summary,
                                        config.to_dict(), metrics)
        summaries.png_images(config.train.epochs, {
            name: figures[name] for name in ("samples", "confusion_matrix", "mistakes")})
        summaries.final_scalars(config.train.epochs, {"accuracy": test_totals.accuracy,
                                                      "loss": test_totals.loss})
        run_dir_lib.write_json(os.path.join(run_dir, run_dir_lib.METRICS_FILE), metrics)
    summaries.close()
    logging.info("Test accuracy %.4f, test loss %.4f (%d examples)", test_totals.accuracy,
                 test_totals.loss, int(test_totals.count))
    return metrics


def _export(model: tf.keras.Model, run_dir: str, chief: bool) -> None:
    """SavedModel (every worker takes part; non-chief ones into a temp dir) and .keras."""
    if chief:
        export_lib.export_saved_model(model, os.path.join(run_dir, export_lib.EXPORT_DIR))
        export_lib.save_keras(model, os.path.join(run_dir, export_lib.KERAS_FILE))
    else:
        temp = os.path.join(run_dir, f".export-{distribute.worker_id()}-tmp")
        export_lib.export_saved_model(model, temp)
        shutil.rmtree(temp, ignore_errors=True)


def train_epoch(trainer: Trainer, train_input: input_pipeline.TrainInput, epoch: int,
                steps_per_epoch: int, summaries, verbose: bool,
                profiler: Optional[summaries_lib.Profiler] = None, trace: bool = False
                ) -> tuple[Totals, float]:
    """One pass over the training data, ``steps_per_loop`` steps per call.

    ``trace`` records the graph of the first call (TensorBoard's Graphs tab).
    """
    config = trainer.config.train
    dist_dataset = trainer.strategy.distribute_datasets_from_function(
        lambda context: train_input.dataset(epoch, context))
    iterator = iter(dist_dataset)
    progbar = tf.keras.utils.Progbar(steps_per_epoch, unit_name="step",
                                     verbose=1 if verbose else 0)
    totals = Totals()
    done = 0
    start = time.perf_counter()
    while done < steps_per_epoch:
        num_steps = min(config.steps_per_loop, steps_per_epoch - done)
        if profiler:
            profiler.before(trainer.step, num_steps)
        if trace:
            summaries.trace_on()
        chunk = trainer.train_steps(iterator, num_steps)
        if trace:
            summaries.trace_export("train_steps", trainer.step)
            trace = False
        totals.add(chunk)
        done += num_steps
        step = trainer.step
        if profiler:
            profiler.after(step)
        if step // config.summary_every_steps != (step - num_steps) // config.summary_every_steps:
            summaries.step_scalars(step, {"loss": chunk.loss, "accuracy": chunk.accuracy})
        progbar.update(done, [("loss", totals.loss), ("accuracy", totals.accuracy)],
                       finalize=done == steps_per_epoch)
    return totals, time.perf_counter() - start


def _append(history: dict[str, list[float]], train: Totals, val: Totals, seconds: float) -> None:
    history["loss"].append(train.loss)
    history["accuracy"].append(train.accuracy)
    history["val_loss"].append(val.loss)
    history["val_accuracy"].append(val.accuracy)
    history["epoch_seconds"].append(seconds)
    history["examples_per_second"].append(train.count / seconds)


def _metrics(history: dict[str, list[float]], info: dict, test: Optional[Totals],
             finished: bool) -> dict[str, Any]:
    train_seconds = float(np.sum(history["epoch_seconds"]))
    examples = float(np.sum(np.multiply(history["epoch_seconds"],
                                        history["examples_per_second"])))
    metrics = {
        "finished": finished,
        "epochs_completed": len(history["loss"]),
        "history": history,
        "train_seconds": train_seconds,
        "examples_per_second": examples / train_seconds if train_seconds else 0.0,
        "device": info["device_name"],
        **info,
    }
    if test is not None:
        metrics.update(test_accuracy=test.accuracy, test_loss=test.loss,
                       test_examples=int(test.count))
    return metrics
