"""notebooks/mnist_research.ipynb runs top to bottom, unattended, on tiny data."""

import json
import os
import signal
import time

import pytest

from tests.helpers import REPO, selected

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


def _client(parameters):
    """A client of the notebook with ``parameters`` in a cell after the "parameters" one."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (index,) = [
        i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])
    ]
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(parameters))
    return nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},
    )


async def _execute(client, **kwargs):
    """Runs every cell; the CellExecutionError of the first that fails, else None."""
    try:
        await client.async_execute(**kwargs)
    except nbclient.exceptions.CellExecutionError as error:
        return error
    return None


@pytest.fixture(scope="module")
def executed(npz_dir, tmp_path_factory, request):
    """The notebooks the selected tests read, executed side by side (a kernel each, mostly
    on one core): ``full`` on the tiny data ({"client", "run_dir", "error", "seconds"})
    and ``missing``, whose DATA_DIR does not exist ({"client", "missing", "folder",
    "error"})."""
    import asyncio

    folder = tmp_path_factory.mktemp("notebook")
    runs, work = {}, {}
    if selected(request, "full_notebook"):
        run_dir = folder / "runs" / "notebook"
        client = _client(_parameters(npz_dir, run_dir, show_tensorboard=True))
        runs["full"] = {"client": client, "run_dir": run_dir}
        # As a user's kernel starts: no TF_CPP_MIN_LOG_LEVEL (the test suite sets one).
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        work["full"] = _execute(client, env=env)
    if selected(request, "missing_data_notebook"):
        missing = str(folder / "no-such-folder")
        client = _client(_parameters(missing, folder / "run", False))
        runs["missing"] = {"client": client, "missing": missing, "folder": folder}
        work["missing"] = _execute(client)

    async def together():
        return await asyncio.gather(*work.values())

    start = time.time()
    try:
        errors = asyncio.run(together())
    finally:
        _stop_tensorboards(folder / "runs")
    for name, error in zip(work, errors):
        runs[name].update(error=error, seconds=time.time() - start)
    return runs


@pytest.fixture(scope="module")
def full_notebook(executed):
    return executed["full"]


@pytest.fixture(scope="module")
def missing_data_notebook(executed):
    return executed["missing"]


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(full_notebook):
    if full_notebook["error"] is not None:  # the first failing cell's error
        raise full_notebook["error"]
    notebook, run_dir = full_notebook["client"].nb, full_notebook["run_dir"]
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
    print(f"notebook ran in {full_notebook['seconds']:.0f} s")


@pytest.mark.slow
def test_notebook_data_error_names_its_own_setting(missing_data_notebook):
    """A DATA_DIR that does not exist: the error line names DATA_DIR, not a command's flag."""
    error, missing = missing_data_notebook["error"], missing_data_notebook["missing"]
    assert isinstance(error, nbclient.exceptions.CellExecutionError), error
    assert (error.ename, error.evalue) == ("DataError", f"{missing}: DATA_DIR does not exist")
    assert not (missing_data_notebook["folder"] / "run").exists()
