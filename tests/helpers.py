"""Helpers the tests share: tiny learnable MNIST-shaped data, IDX bytes, running commands."""

import contextlib
import glob
import gzip
import os
import shutil
import signal
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tests folder itself, where the scripts the tests run live (fault_runner.py, replica_check.py).
TESTS = os.path.join(REPO, "tests")
REAL_MNIST = os.path.join(REPO, "..", "shared", "datasets", "mnist")
# The smoke experiment's flagfile as a flag that works from any folder.
SMOKE = f"--flagfile={os.path.join(REPO, 'experiments', 'smoke.flags')}"


def layer_kinds(block) -> list[str]:
    """The class names of a conv or dense block's layers, in the order its ``call`` applies them."""
    names = ("conv", "dense", "norm", "activation", "pool", "dropout")
    layers = [getattr(block, name, None) for name in names]
    return [type(layer).__name__ for layer in layers if layer is not None]


def make_digits(num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [num, 28, 28] whose class is a bright 6x6 patch's position, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(num, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 5)
        r, c = 3 + row * 12, 1 + col * 5
        images[i, r : r + 6, c : c + 5] = 255
    return images, labels.astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(folder, arrays, gz: bool, names: dict[str, str] | None = None) -> str:
    """Writes ``arrays`` as IDX files named ``names`` (by Keras array name; MNIST's by default)."""
    from mnist_research.config.registry import MNIST_IDX_FILES as IDX_NAMES

    for key, stem in (names or IDX_NAMES).items():
        payload = idx_bytes(arrays[key])
        if gz:
            with gzip.open(os.path.join(folder, stem + ".gz"), "wb") as f:
                f.write(payload)
        else:
            with open(os.path.join(folder, stem), "wb") as f:
                f.write(payload)
    return str(folder)


def start(argv, *, env=None, cwd=REPO) -> subprocess.Popen:
    """Starts ``argv`` with its stdout and stderr captured as text; :func:`finish` waits.

    For independent processes a test runs side by side (the 2 cores are busier). It leads
    a process group of its own, so :func:`stop` ends the processes it starts too.
    """
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def selected(request, fixture: str) -> bool:
    """Whether a test of the session's selection uses ``fixture``: a fixture that starts
    processes for several tests starts only those a selected test reads."""
    return any(fixture in getattr(item, "fixturenames", ()) for item in request.session.items)


def side_by_side(chains: dict) -> dict:
    """Runs each chain's steps one after another and the chains side by side (a thread
    each); returns each chain's step results. A step is a function that starts a process
    and waits for it: independent processes keep the 2 cores busier than one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, len(chains))) as pool:
        futures = {
            name: pool.submit(lambda steps=steps: [step() for step in steps])
            for name, steps in chains.items()
        }
        return {name: future.result() for name, future in futures.items()}


def start_gpu_check(*args, cwd, env=None) -> subprocess.Popen:
    """``bash benchmarks/gpu_check.sh args`` started from ``cwd``; :func:`finish` waits."""
    full_env = {
        **os.environ,
        "PYTHON": sys.executable,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": REPO,
        **(env or {}),
    }
    return start(
        ["bash", os.path.join(REPO, "benchmarks", "gpu_check.sh"), *args], env=full_env, cwd=cwd
    )


def write_finished_run(run_dir, config, test_accuracy: float = 0.5) -> None:
    """A run dir as a run finished with ``config`` leaves it (``config.json``, ``metrics.json``
    holding ``test_accuracy``), with no checkpoint, written in no time."""
    from mnist_research.config.registry import HISTORY_KEYS
    from mnist_research.files import write_json
    from mnist_research.rundir import layout

    os.makedirs(run_dir, exist_ok=True)
    layout.save_config(run_dir, config, "")
    history = {k: [0.5] * config.train.epochs for k in HISTORY_KEYS}
    write_json(
        os.path.join(run_dir, layout.METRICS_FILE),
        {
            "finished": True,
            "epochs_completed": config.train.epochs,
            "history": history,
            "test_accuracy": test_accuracy,
            "test_loss": 1.0,
        },
    )


def stop(process: subprocess.Popen) -> None:
    """Kills a process :func:`start` started, and what it started, if still running."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def finish(process: subprocess.Popen, timeout: float) -> subprocess.CompletedProcess:
    """Waits for a started process (killed past ``timeout``): what ``subprocess.run`` gives."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(process)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def start_module(module: str, *args: str, env=None, cwd=REPO) -> subprocess.Popen:
    """Starts ``python -m module args`` (TensorFlow's C++ INFO/WARNING lines off)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return start([sys.executable, "-m", module, *args], env=full_env, cwd=cwd)


def run_module(module: str, *args: str, env=None, timeout: int = 300, cwd=REPO):
    """Runs ``python -m module args`` and returns the CompletedProcess."""
    return finish(start_module(module, *args, env=env, cwd=cwd), timeout)


# The processes slow tests wait for that need nothing but the session's data: test (as
# "module::name") -> start(npz_dir, folder, environ) -> Popen (or a list of Popens that run
# side by side), ``environ`` the session's
# environment (TensorFlow's C++ INFO/WARNING lines off). tests/conftest.py starts those of
# the selected tests one at a time beside the session's tests (the pytest process keeps one
# core busy; a test waiting for one process left the other idle) and the `early_process`
# fixture gives a test its finished process.
EARLY: dict = {}


def early(start):
    """Registers ``start``, named ``early_<test>``, as the early process of ``<test>``."""
    test = start.__name__.removeprefix("early_")
    EARLY[f"{start.__module__}::{test}"] = start
    return start


def start_check_script(script: str, environ) -> subprocess.Popen:
    """Starts ``tests/<script> REPO`` in a fresh Python (its devices set up before any TF op)."""
    return start([sys.executable, os.path.join(TESTS, script), REPO], env=environ)


def check_reports(result: subprocess.CompletedProcess) -> list[dict]:
    """The JSON objects a check script's last lines print, last first."""
    import json

    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.strip().splitlines() if line.startswith("{")]
    return [json.loads(line) for line in reversed(lines)]


def signal_once_written(process: subprocess.Popen, pattern: str, sig=signal.SIGTERM) -> str:
    """Sends ``sig`` once a file matching ``pattern`` exists; returns the process's stderr.

    The process (started with ``stderr=PIPE``, text) must not end before that, and the
    file must come within 180 s.
    """
    import time

    deadline = time.time() + 180
    while not glob.glob(pattern, recursive=True):
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.time() < deadline, f"no {pattern} within 180 s"
        time.sleep(0.1)
    process.send_signal(sig)
    return process.communicate(timeout=150)[1]


@contextlib.contextmanager
def tmpfs(folder, size: str):
    """A tmpfs of ``size`` (``"5m"``) mounted at ``folder/disk`` (skips the test where it can't)."""
    import pytest

    mount = folder / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def find_chromium():
    """Path of a Chromium/Chrome binary, or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def scalars(folder):
    """Every scalar tensor summary in a folder's event files: tag → [(step, value)]."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    files = glob.glob(os.path.join(folder, "events.out.tfevents.*"))
    assert files, f"no event file in {folder}"
    values = {}
    for path in sorted(files):
        acc = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0})
        acc.Reload()
        for tag in acc.Tags()["tensors"]:
            for event in acc.Tensors(tag):
                value = tensor_util.make_ndarray(event.tensor_proto)
                number = float(value) if value.dtype.kind == "f" and value.ndim == 0 else None
                values.setdefault(tag, []).append((event.step, number))
    return values


class CommandResult:
    """What :func:`run_main` gives back: the fields of a ``CompletedProcess`` it uses."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_main(module: str, *args: str, cwd=REPO, timeout: float = 900) -> CommandResult:
    """Runs a command's ``main`` in this process, as ``python -m module args`` would.

    The command's flags are defined on absl's ``FLAGS`` for the call and removed
    after it, the command line is parsed and ``main`` run as :func:`mnist_research.command.run`
    does (a bad value is its one ``error:`` line and exit status 1), from ``cwd`` (the
    repository root: relative ``--flagfile=experiments/...``), and what it writes to
    ``sys.stdout``/``sys.stderr`` and logs ("epoch 1/2", "Restored ...") is captured.
    Two things ``absl.app.run`` does in a real process are done for the call: absl's
    handler on the root logger, and ``--verbosity`` 0 (INFO) when the command line
    sets none (absl's own default is -1, warnings only).
    For what needs no process of its own: an error line, files a command writes.
    TensorFlow's own terminal output (C++ lines, the import filter) needs a real
    process: :func:`run_module`.
    A call still running after ``timeout`` seconds (a hang) ends the test session
    with every thread's traceback instead of stalling it.
    """
    import faulthandler
    import importlib
    import io
    import logging as std_logging
    import warnings

    from absl import flags
    from absl import logging as absl_logging

    from mnist_research import command

    target = importlib.import_module(module)
    before = set(flags.FLAGS)
    registries = (
        flags.FLAGS.flags_by_module_dict(),
        flags.FLAGS.flags_by_module_id_dict(),
        flags.FLAGS.key_flags_by_module_dict(),
    )
    modules_before = [set(registry) for registry in registries]
    target.define_flags(flags.FLAGS)
    added = sorted(set(flags.FLAGS) - before)
    handler = absl_logging.get_absl_handler()
    root, absl_logger = std_logging.getLogger(), std_logging.getLogger("absl")
    attached = handler in root.handlers
    saved_levels = root.level, absl_logger.level
    saved = (
        handler.python_handler.stream,
        handler.python_handler.formatter,
        list(handler.filters),
        std_logging.getLogger("tensorflow").level,
        absl_logging.get_verbosity(),
        sys.argv,
    )
    was_parsed = flags.FLAGS.is_parsed()
    out, err = io.StringIO(), io.StringIO()
    handler.python_handler.stream = err
    sys.argv = [module, *args]
    if not attached:
        root.addHandler(handler)
    faulthandler.dump_traceback_later(timeout, exit=True)
    try:
        with (
            contextlib.chdir(cwd),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
        ):
            try:
                flags.FLAGS["verbosity"].unparse()  # unset, as in a fresh process
                argv = command._parse_flags(list(sys.argv))
                if flags.FLAGS["verbosity"].using_default_value:
                    flags.FLAGS.verbosity = 0  # what absl.app.run does after parsing
                code = command._configure_logs_then(target.main, argv)
            except SystemExit as e:
                code = e.code
    finally:
        faulthandler.cancel_dump_traceback_later()
        if not attached:
            root.removeHandler(handler)
        for name in added:
            delattr(flags.FLAGS, name)
        for registry, known in zip(registries, modules_before):
            for module_key in set(registry) - known:  # absl keeps an empty entry
                del registry[module_key]
        flags.FLAGS.unparse_flags()
        if was_parsed:
            flags.FLAGS.mark_as_parsed()
        stream, formatter, filters, tf_level, verbosity, sys.argv = saved
        handler.python_handler.stream = stream
        handler.setFormatter(formatter)
        handler.filters[:] = filters
        std_logging.getLogger("tensorflow").setLevel(tf_level)
        absl_logging.set_verbosity(verbosity)
        root.setLevel(saved_levels[0])  # last: set_verbosity sets the absl logger's level
        absl_logger.setLevel(saved_levels[1])
    return CommandResult(0 if code is None else int(code), out.getvalue(), err.getvalue())
