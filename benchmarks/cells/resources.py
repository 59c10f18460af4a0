"""What the cells of a sweep share: the store, the device and the loaded datasets."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field

import torch

from benchmarks.cells.builders import cell_dataset
from benchmarks.cells.cell import Cell
from benchmarks.tracking.store import Tracker
from datasets.registry import DatasetBundle

log = logging.getLogger(__name__)


@dataclass
class CellResources:
    """The tracker, the device, and each distinct dataset built once."""

    tracker: Tracker
    device: torch.device
    _datasets: dict[str, DatasetBundle] = field(default_factory=dict)

    def dataset(self, cell: Cell) -> DatasetBundle:
        """The cell's dataset, built once per distinct dataset config."""
        options = dataclasses.asdict(cell.dataset_options)
        key = json.dumps({"name": cell.dataset["name"], **options}, sort_keys=True, default=str)
        if key not in self._datasets:
            bundle = cell_dataset(cell)
            for line in bundle.summary():
                log.info(line)
            self._datasets[key] = bundle
        return self._datasets[key]
