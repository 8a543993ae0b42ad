"""An export/ that holds other weights than the run exported is refused, and rebuilt by train."""

import json
import logging
import os
import shutil

import pytest

from mnist_research.errors import RunDirError
from mnist_research.inference import export as export_lib
from mnist_research.inference import finished_run as restore
from mnist_research.model import registry
from tests.helpers import REPO, run_main

pytestmark = pytest.mark.slow


def test_a_swapped_export_is_refused_and_train_exports_again(
    finished_run, npz_dir, tmp_path, caplog
):
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run[0], run_dir)
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    export_dir = os.path.join(run_dir, export_lib.EXPORT_DIR)
    assert metrics["export_sha256"] == export_lib.weights_sha256(export_dir)
    restore.load_logits_fn(run_dir)  # its own export loads

    other = registry.create(restore.load_config(run_dir).model)  # untrained weights
    shutil.rmtree(export_dir)
    export_lib.export_saved_model(other, export_dir)
    with pytest.raises(RunDirError, match="holds other weights than this run exported"):
        restore.load_logits_fn(run_dir)
    restore.load_logits_fn(run_dir, from_checkpoint=True)  # the checkpoint still serves

    # In this process: what is checked is files and a log line (absl's: caplog has it).
    with caplog.at_level(logging.WARNING, logger="absl"):
        result = run_main(
            "mnist_research.train",
            f"--flagfile={os.path.join(REPO, 'experiments', 'smoke.flags')}",
            f"--data_dir={npz_dir}",
            f"--run_dir={run_dir}",
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "holds other weights" in caplog.text and "holds other weights" in result.stderr
    restore.load_logits_fn(run_dir)  # exported again from the checkpoint
