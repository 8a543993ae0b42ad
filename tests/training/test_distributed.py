"""Multi-replica semantics: mirrored replicas, 1 vs 2 replicas, two worker processes."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import check_reports, early, start, start_check_script

pytestmark = pytest.mark.slow


@early
def early_test_two_replicas_identical_and_agree_with_one_replica(npz_dir, folder, environ):
    return start_check_script("replica_check.py", environ)


def test_two_replicas_identical_and_agree_with_one_replica(early_process):
    reports = check_reports(early_process[1])
    report = reports[0]
    assert report["replicas"] == 2
    assert report["mirrored"] == report["checked"] == 17  # 11 trainable + 6 BN moving stats
    assert report["replica_max_diff"] == 0.0  # replicas hold bit-identical weights
    # Same global batch, loss scaled by it, synchronized BN, no dropout: the two
    # topologies differ only in float32 summation order (measured: 1.2e-6 after 20 steps).
    # A real semantic error (loss not scaled by the global batch, unsynchronized BN)
    # moves weights by orders of magnitude more than this tolerance.
    assert report["weight_max_diff"] < 1e-4
    np.testing.assert_allclose(report["two_losses"], report["one_losses"], rtol=1e-5)
    assert report["one_losses"][-1] < report["one_losses"][0] / 2
    # BatchNormalization on 2 replicas: XLA cannot compile the step, the plain one runs.
    assert report["jit_compile"] == "none"
    # Dropout: each replica draws its own mask for the same step (independent masks at
    # rate 0.3 agree on 58 % of units), the same one again for the same step.
    assert report["mask_overlap_across_replicas"] == pytest.approx(0.58, abs=0.03)
    assert report["masks_repeat"]
    assert report["drop_fractions"] == pytest.approx([0.3, 0.3], abs=0.01)
    # Evaluation on 2 replicas counts every example once, however the last batch splits.
    evaluation_report = reports[1]
    evaluation = evaluation_report["evaluation"]
    assert evaluation_report["eval_traces"] == 1  # both sizes share the evaluation trace
    for size, (one, two) in evaluation.items():
        assert one["count"] == two["count"] == int(size)
        assert abs(one["correct"] - two["correct"]) <= 1  # float32 near-ties may differ
        assert two["loss_sum"] == pytest.approx(one["loss_sum"], rel=1e-4)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(npz_dir, run_dir, *extra, environ, limit=240):
    """Starts two MultiWorkerMirroredStrategy workers with ``environ``.

    Each worker is bounded by ``timeout -k`` (a lone MWMS worker blocks forever and
    ignores SIGTERM, so the kill is SIGKILL after a grace period).
    """
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    procs = []
    for index in range(2):
        env = {
            **environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        command = [
            "timeout",
            "-s",
            "KILL",
            str(limit),
            sys.executable,
            "-m",
            "mnist_research.train",
            "--flagfile=experiments/smoke.flags",
            f"--data_dir={npz_dir}",
            f"--run_dir={run_dir}",
            "--strategy=multi_worker",
            "--verbosity=1",
            *extra,
        ]  # the weights fingerprint is a --verbosity=1 line
        procs.append(start(command, env=env))
    return procs


def run_workers(npz_dir, run_dir, *extra, limit=240):
    """Runs two workers (:func:`start_workers`); returns their (status, stdout, stderr)."""
    procs = start_workers(npz_dir, run_dir, *extra, environ=os.environ, limit=limit)
    outputs = []
    for proc in procs:
        try:
            stdout, stderr = proc.communicate(timeout=limit + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        outputs.append((proc.returncode, stdout, stderr))
    return outputs


def fingerprint(stderr):
    found = re.findall(r"Final weights sha256 ([0-9a-f]{64})", stderr)
    assert found, stderr[-3000:]
    return found[-1]


@early
def early_test_multi_worker_two_processes_on_loopback_and_resume(npz_dir, folder, environ):
    return start_workers(npz_dir, folder / "mwms", "--epochs=2", environ=environ)


def test_multi_worker_two_processes_on_loopback_and_resume(npz_dir, early_process):
    folder, results = early_process
    run_dir = str(folder / "mwms")
    outputs = [(r.returncode, r.stdout, r.stderr) for r in results]
    for code, _, stderr in outputs:
        assert code == 0, stderr[-3000:]
    chief, worker = (fingerprint(stderr) for _, _, stderr in outputs)
    assert chief == worker  # both workers hold bit-identical weights

    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["strategy"] == "MultiWorkerMirroredStrategy"
    assert metrics["num_replicas"] == 2 and metrics["epochs_completed"] == 2
    assert metrics["weights_sha256"] == chief
    assert metrics["test_examples"] == 200  # each worker evaluated its shard; sums reduced
    assert metrics["history"]["loss"][1] < metrics["history"]["loss"][0]
    for path in (
        "checkpoints/ckpt-2.index",
        "export/saved_model.pb",
        "model.keras",
        "reports/report.html",
        "flags.txt",
        "config.json",
    ):
        assert os.path.exists(os.path.join(run_dir, path)), path
    leftovers = [n for n in os.listdir(run_dir) if "tmp" in n]
    leftovers += [n for n in os.listdir(os.path.join(run_dir, "checkpoints")) if "tmp" in n]
    assert not leftovers, leftovers  # the non-chief's temporary saves were removed
    assert outputs[1][1].count("Test accuracy") == 1  # every worker reports...
    assert not os.path.exists(os.path.join(run_dir, "train", "worker_1"))  # ...chief writes
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(os.path.join(run_dir, "train"))
    acc.Reload()  # the chief writes the gradient histograms
    assert any(t.startswith("histograms/gradients/") for t in acc.Tags()["tensors"])

    # A restart with more epochs resumes from the checkpoint instead of starting over.
    outputs = run_workers(npz_dir, run_dir, "--epochs=3")
    for code, _, stderr in outputs:
        assert code == 0, stderr[-3000:]
        assert "Restored" in stderr and "epoch 3/3" in stderr and "epoch 1/3" not in stderr
    assert fingerprint(outputs[0][2]) == fingerprint(outputs[1][2])
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["epochs_completed"] == 3 and len(metrics["history"]["loss"]) == 3


@pytest.fixture
def global_policy_restored():
    """Keras's precision policy is global: put back what the session had after the test."""
    import tensorflow as tf

    before = tf.keras.mixed_precision.global_policy().name
    yield
    tf.keras.mixed_precision.set_global_policy(before)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_head(policy, global_policy_restored):
    """In this process: the policy is Keras's global setting, set and put back (no logical
    devices to configure, which only a fresh process could)."""
    import tensorflow as tf

    from mnist_research import config as c
    from mnist_research.data import pipeline as input_pipeline
    from mnist_research.training import devices as distribute
    from mnist_research.training.loop import Trainer
    from tests.helpers import make_digits

    cfg = c.ExperimentConfig(
        distribute=c.DistributeConfig(mixed_precision=policy), train=c.TrainConfig(batch_size=64)
    )
    distribute.configure_devices(cfg.distribute)
    assert tf.keras.mixed_precision.global_policy().name == policy
    tf.keras.utils.set_random_seed(cfg.train.seed)
    trainer = Trainer(cfg, tf.distribute.get_strategy())
    x, y = make_digits(640)
    inp = input_pipeline.TrainInput(x, y, 64, seed=0)
    losses = []
    for epoch in range(3):
        it = iter(inp.dataset(epoch))
        losses.append(float(trainer.train_steps(it, inp.steps_per_epoch()).means()["loss"]))
    m = trainer.model
    assert m.block_0.dense.compute_dtype == policy.split("_")[1]
    assert m.head.compute_dtype == "float32" and m.head.kernel.dtype == "float32"
    assert input_pipeline.logits_function(trainer.model)(x[:5]).dtype == "float32"
    optimizer = type(trainer.optimizer).__name__
    assert optimizer == ("LossScaleOptimizer" if policy == "mixed_float16" else "FusedAdam")
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] / 2
