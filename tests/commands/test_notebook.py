"""notebooks/mnist_research.ipynb runs top to bottom, unattended, on tiny data."""

import json
import os
import signal
import time

import pytest

from tests.helpers import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = os.path.join(REPO, "notebooks", "mnist_research.ipynb")


def _parameters(npz_dir, run_dir, show_tensorboard):
    """Assignments in a cell after the one tagged "parameters" (papermill's convention)."""
    return "\n".join(
        [
            f"DATA_DIR = {npz_dir!r}",
            f"RUN_DIR = {str(run_dir)!r}",
            "QUICK_EPOCHS = 2",
            'EXTRA_FLAGS = ["--steps_per_loop=5", "--summary_every_steps=5", "--nohistograms"]',
            f"SHOW_TENSORBOARD = {show_tensorboard}",
        ]
    )


def _stop_tensorboards(logdir):
    from tensorboard import manager

    for info in manager.get_all():
        if os.path.realpath(info.logdir) == os.path.realpath(logdir):
            try:
                os.kill(info.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(npz_dir, tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (index,) = [
        i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])
    ]
    run_dir = tmp_path / "runs" / "notebook"
    notebook.cells.insert(
        index + 1, nbformat.v4.new_code_cell(_parameters(npz_dir, run_dir, show_tensorboard=True))
    )
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},
    )
    start = time.time()
    try:
        # As a user's kernel starts: no TF_CPP_MIN_LOG_LEVEL (the test suite sets one).
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        client.execute(env=env)  # raises CellExecutionError on the first failing cell
    finally:
        _stop_tensorboards(run_dir.parent)
    seconds = time.time() - start

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["finished"] and metrics["epochs_completed"] == 2
    code = [c for c in notebook.cells if c.cell_type == "code"]
    everything = "".join(_text(c) for c in code)
    assert "epoch 2/2" in everything  # the per-epoch lines reach the notebook
    for noise in (
        "Sharding callback",
        "UserWarning",
        "cudart_stub",
        "cuInit",
        "cpu_feature_guard",
        "absl::InitializeLog",
        "Logging before flag parsing",
    ):
        assert noise not in everything, noise
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in everything
    assert f"accuracy {metrics['test_accuracy']:.4f}" in everything  # evaluate
    pngs = sum(1 for c in code for o in c.outputs if "image/png" in o.get("data", {}))
    assert pngs == 7  # data grid, curves, samples, confusion, per-class, mistakes, scan
    assert "scan.png: " in everything and "(true " in everything
    tensorboard = code[-1]
    html = "".join(str(o.get("data", {})) for o in tensorboard.outputs)
    assert "ERROR" not in html and ("iframe" in html or "localhost" in html), html
    print(f"notebook ran in {seconds:.0f} s")


@pytest.mark.slow
def test_notebook_data_error_names_its_own_setting(tmp_path):
    """A DATA_DIR that does not exist: the error line names DATA_DIR, not a command's flag."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (index,) = [
        i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])
    ]
    missing = str(tmp_path / "no-such-folder")
    notebook.cells.insert(
        index + 1, nbformat.v4.new_code_cell(_parameters(missing, tmp_path / "run", False))
    )
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},
    )
    with pytest.raises(nbclient.exceptions.CellExecutionError) as raised:
        client.execute()
    assert (raised.value.ename, raised.value.evalue) == (
        "DataError",
        f"{missing}: DATA_DIR does not exist",
    )
    assert not (tmp_path / "run").exists()
