"""What a cell is made of, built from its typed options (``Cell.typed_options``, read once)."""

from __future__ import annotations

from benchmarks.cells.cell import Cell
from datasets.registry import DATASETS, DatasetBundle
from methods.lifecycle import Method
from methods.networks import MODELS
from methods.networks.parts import ModelParts
from methods.registry import METHODS


def cell_method(cell: Cell) -> Method:
    return METHODS.build(cell.method_name, cell.method_options)


def cell_model_parts(cell: Cell) -> ModelParts:
    return MODELS.build(cell.model["name"], cell.model_options)


def cell_dataset(cell: Cell) -> DatasetBundle:
    return DATASETS.build(cell.dataset["name"], cell.dataset_options)
