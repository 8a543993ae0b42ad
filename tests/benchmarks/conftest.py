"""The gpu_check scripts' processes, started as this folder's first test starts."""

import os

import pytest

from tests.helpers import selected, start_gpu_check, stop


@pytest.fixture(scope="package", autouse=True)
def _gpu_check_started(npz_dir, tmp_path_factory, request):
    """The two slow gpu_check tests' scripts, started at once as the folder's first test
    (the benchmark's) starts, when a selected test reads them: --cpu_only --tiny (three
    trainings, one after another, and compare) and the check of a machine without a GPU
    (one TensorFlow start). Each works mostly on one core, as does the benchmark's smoke
    run: they run beside it instead of after it."""
    if not selected(request, "gpu_check_scripts"):
        yield None
        return
    tiny_dir, no_gpu_dir = tmp_path_factory.mktemp("tiny"), tmp_path_factory.mktemp("no_gpu")
    # Run from another folder: --data_dir and --output are the caller's relative paths.
    tiny = start_gpu_check(
        "--cpu_only",
        "--tiny",
        f"--data_dir={os.path.relpath(npz_dir, tiny_dir)}",
        "--output=check",
        cwd=tiny_dir,
        env={"RUN_TIMEOUT": "600"},
    )
    no_gpu = start_gpu_check(
        f"--output={no_gpu_dir / 'out'}", cwd=no_gpu_dir, env={"CUDA_VISIBLE_DEVICES": "-1"}
    )
    yield {"tiny": (tiny_dir, tiny), "no_gpu": (no_gpu_dir, no_gpu)}
    for process in (tiny, no_gpu):  # one a failed or deselected test did not wait for
        stop(process)


@pytest.fixture(scope="package")
def gpu_check_scripts(_gpu_check_started):
    """The started scripts: {"tiny": (folder, process), "no_gpu": (folder, process)}."""
    return _gpu_check_started
