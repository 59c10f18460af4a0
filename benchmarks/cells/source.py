"""The source model of a cell that starts from another cell's trained model (pretrained methods
start from the dense cell of their setting and seed): the one rule that names the source cell,
and the source run's weights, snapshots and training cost."""

from __future__ import annotations

import math

import torch

from benchmarks.cells.cell import Cell
from benchmarks.cells.method_configs import load_method_config
from benchmarks.tracking.schema import (
    MODEL_STATE,
    SNAPSHOTS,
    TRAIN_FLOPS,
    TRAIN_STEPS,
    artifact,
    snapshot_file,
)
from benchmarks.tracking.store import Tracker


def source_cell(cell: Cell) -> Cell | None:
    """The cell whose trained model ``cell`` starts from: the unpruned ``start_from`` method
    with its own config file, same setting and seed. None for cells that start fresh."""
    name = cell.start_from
    return cell.with_method(load_method_config(name), 0.0) if name else None


class SourceModel:
    """The finished run of a cell's source cell, read from the store."""

    def __init__(self, tracker: Tracker, run_id: str, device: torch.device):
        self.tracker, self.run_id, self.device = tracker, run_id, device

    def trained_state(self) -> dict[str, torch.Tensor]:
        return self.tracker.download_torch(self.run_id, artifact(MODEL_STATE), self.device)["model"]

    def snapshot(self, step: int, snapshot_steps: tuple[int, ...]) -> dict[str, torch.Tensor]:
        """State of the source run at training step ``step`` (saved at protocol.snapshot_steps)."""
        if step not in snapshot_steps:
            raise ValueError(
                f"the dense run kept snapshots at steps {list(snapshot_steps)}, not {step}; add "
                f"{step} to protocol.snapshot_steps (this retrains the dense model)"
            )
        path = f"{SNAPSHOTS}/{snapshot_file(step)}"
        return self.tracker.download_torch(self.run_id, path, self.device)["model"]

    def training_cost(self) -> dict[str, float]:
        """The source run's training steps and FLOPs (NaN when it predates cost logging)."""
        metrics = self.tracker.run_metrics(self.run_id)
        return {key: metrics.get(key, math.nan) for key in (TRAIN_STEPS, TRAIN_FLOPS)}
