"""What the phases of one run share: settings, data, trainer, checkpoint state, writers."""

from __future__ import annotations

import dataclasses
from typing import Any

from mnist_research.config import ExperimentConfig
from mnist_research.data.sources import Splits
from mnist_research.training.checkpoint_state import CheckpointState
from mnist_research.training.history import History
from mnist_research.training.summaries import Summaries
from mnist_research.training.trainer import Trainer


@dataclasses.dataclass
class RunContext:
    """One run in progress.

    Attributes:
      config: the experiment.
      run_dir: where its outputs go.
      chief: whether this worker writes the run dir (always true on one machine).
      info: the device description recorded in ``metrics.json`` and HParams.
      datasets: the uint8 splits.
      trainer: model, optimizer and compiled steps.
      state: the checkpointed state.
      summaries: TensorBoard writers (no-op writers on non-chief workers).
      history: per-epoch history so far (restored from the checkpoint).
      flagfile_text: the resolved flags, saved as ``flags.txt`` and in TensorBoard.
    """

    config: ExperimentConfig
    run_dir: str
    chief: bool
    info: dict[str, Any]
    datasets: Splits
    trainer: Trainer
    state: CheckpointState
    summaries: Summaries
    history: History
    flagfile_text: str = ""

    @property
    def epochs_done(self) -> int:
        """Epochs completed so far (the restored epoch counter)."""
        return int(self.trainer.epoch.numpy())
