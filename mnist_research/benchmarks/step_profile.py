"""Where a training step's time goes, from a TF profiler trace of the project's loop.

Trains a few warm-up calls, then records ``calls`` calls of ``steps_per_loop``
steps with ``tf.profiler`` and reads the trace (``*.xplane.pb``) back: per
step, the wall time of the loop, the time inside the XLA program (the
compiled replica step) and its largest kernels, the ``IteratorGetNext`` wait,
and the CPU time of the tf.data threads that gather and preprocess batches in
parallel (on 2 cores they compete with the step). What is neither the XLA
program nor the iterator is the loop's own per-step work (while-loop control
ops, launching the program)::

    python -m mnist_research.benchmarks.step_profile DATA_DIR [--nojit]
"""

from __future__ import annotations

import collections
import glob
import sys
import tempfile

XLA_CALL = "CpuExecutable::ExecuteAsyncOnStream"
GET_NEXT = "IteratorGetNextOp::DoCompute"
LOOP = "__inference__train_loop_fn"


def _events(path: str):
    """(thread name, event name, duration µs) of every event in the host plane."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                yield line.name, names.get(event.metadata_id, ""), event.duration_ps / 1e6


def summarize(path: str, steps: int, top: int = 8) -> dict:
    """Per-step microseconds by category, and the largest XLA kernels."""
    loop = xla = get_next = data_threads = 0.0
    kernels = collections.Counter()
    for thread, name, micros in _events(path):
        if name.startswith("EagerLocalExecute") and LOOP in name:
            loop += micros
        elif name == XLA_CALL:
            xla += micros
        elif name == GET_NEXT:
            get_next += micros
        elif thread.startswith("tf_data") and name.startswith("ExecutorState::Process"):
            data_threads += micros
        elif thread.startswith("tf_numa") and not name.startswith(("Thunk", "Executor")):
            kernels[name.split(".")[0]] += micros
    per_step = {
        "loop": loop / steps,
        "xla_program": xla / steps,
        "iterator_get_next": get_next / steps,
    }
    per_step["loop_other"] = (
        per_step["loop"] - per_step["xla_program"] - per_step["iterator_get_next"]
    )
    per_step["tf_data_threads_cpu"] = data_threads / steps
    return {
        "microseconds_per_step": per_step,
        "xla_kernels_microseconds_per_step": {
            name: micros / steps for name, micros in kernels.most_common(top)
        },
    }


def profile(
    data_dir: str, jit_compile: bool = True, calls: int = 4, steps_per_loop: int = 50
) -> dict:
    """Profiles ``calls`` calls of the project's loop on real data; see :func:`summarize`."""
    import tensorflow as tf

    from mnist_research import config as config_lib
    from mnist_research.data import pipeline, sources
    from mnist_research.training import loop

    data_config = config_lib.DataConfig(data_dir=data_dir)
    data = sources.split(sources.load(data_config), data_config)
    config = config_lib.ExperimentConfig(
        train=config_lib.TrainConfig(jit_compile=jit_compile, steps_per_loop=steps_per_loop)
    )
    strategy = tf.distribute.get_strategy()
    train_input = pipeline.TrainInput(data.x_train, data.y_train, 128, seed=0)
    steps = train_input.steps_per_epoch()
    trainer = loop.Trainer(config, strategy, steps)
    iterator = train_input.distributed(trainer.strategy, 1, 2, steps)
    for _ in range(2):  # Warm-up: tracing and compilation.
        trainer.train_steps(iterator, steps_per_loop)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(calls):
            trainer.train_steps(iterator, steps_per_loop)
        tf.profiler.experimental.stop()
        path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
        result = summarize(path, calls * steps_per_loop)
    result["jit_compile"] = jit_compile
    return result


def main(argv: list[str]) -> int:
    import json

    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--nojit"):
        print(f"usage: {argv[0]} DATA_DIR [--nojit]", file=sys.stderr)
        return 2
    print(json.dumps(profile(argv[1], jit_compile=len(argv) == 2), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
