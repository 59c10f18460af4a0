"""What the cells of a sweep share: the store, the device and the loaded datasets."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import torch

from benchmarks.cells.cell import Cell
from benchmarks.tracking.store import Tracker
from datasets.registry import DatasetBundle, build_dataset

log = logging.getLogger(__name__)


@dataclass
class CellResources:
    """The tracker, the device, and each distinct dataset built once."""

    tracker: Tracker
    device: torch.device
    _datasets: dict[str, DatasetBundle] = field(default_factory=dict)

    def dataset(self, cell: Cell) -> DatasetBundle:
        """The cell's dataset, built once per distinct dataset config."""
        key = json.dumps(cell.dataset_options | {"name": cell.dataset["name"]}, sort_keys=True)
        if key not in self._datasets:
            bundle = build_dataset(cell.dataset["name"], cell.dataset_options)
            for line in bundle.summary():
                log.info(line)
            self._datasets[key] = bundle
        return self._datasets[key]
