"""The per-epoch metrics, declared once: history keys, HParams and the metrics.json check."""

from mnist_research.config import registry as metrics
from mnist_research.rundir import records
from mnist_research.training.summaries import METRICS


def _finished(history: dict, **extra) -> dict:
    return {
        "finished": True,
        "epochs_completed": 2,
        "history": history,
        "test_loss": 0.3,
        "test_accuracy": 0.9,
        **extra,
    }


def test_history_keys_are_each_metric_for_training_then_validation_then_timing():
    names = [m.name for m in metrics.METRICS]
    assert names[:2] == ["loss", "accuracy"]  # the loss first: its sum detects a NaN step
    assert metrics.HISTORY_KEYS == (
        *names,
        *(f"val_{n}" for n in names),
        "epoch_seconds",
        "examples_per_second",
    )
    assert set(records.REQUIRED_HISTORY_KEYS) <= set(metrics.HISTORY_KEYS)


def test_hparams_show_every_metric_for_test_validation_and_training():
    shown = {(m.name.tag, m.name.group) for m in (h.as_proto() for h in METRICS)}
    for metric in metrics.METRICS:
        assert (f"test/{metric.name}", "") in shown
        assert (f"epoch/{metric.name}", "validation") in shown
        assert (f"epoch/{metric.name}", "train") in shown


def test_a_metric_declared_after_a_run_is_absent_from_it_not_damaged():
    history = {key: [0.5, 0.6] for key in records.REQUIRED_HISTORY_KEYS}
    assert records.metrics_problem(_finished(history)) is None
    # A key the run did record must hold every epoch.
    history["val_top2_accuracy"] = [0.9]
    assert "val_top2_accuracy does not hold 2 values" in records.metrics_problem(_finished(history))


def test_a_required_key_or_test_score_missing_is_damage():
    history = {key: [0.5, 0.6] for key in records.REQUIRED_HISTORY_KEYS}
    del history["val_accuracy"]
    assert "val_accuracy" in records.metrics_problem(_finished(history))
    history = {key: [0.5, 0.6] for key in records.REQUIRED_HISTORY_KEYS}
    document = _finished(history)
    del document["test_loss"]
    assert "test_loss" in records.metrics_problem(document)
