"""A run's logged network rebuilt from its weights and description through the registries
(``benchmarks.tracking.models`` stores them): the architecture from the installed project's code,
never from the store. Also MLflow's pyfunc loader of those models (``_load_pyfunc``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.cells.builders import cell_method, cell_model_parts
from benchmarks.cells.cell import Cell
from benchmarks.cells.network_record import FORMAT
from benchmarks.tracking.models import DamagedModelError, read_logged_model, read_network_files
from core.tasks import TaskSpec
from methods.channel_graph import shrink_to_shapes
from methods.networks.base import MultiTaskNet


def rebuild_network(
    description: dict[str, Any], state: dict[str, torch.Tensor]
) -> tuple[MultiTaskNet, tuple[int, ...]]:
    """The described network with ``state`` loaded, in eval mode on the CPU, and its image shape.

    Raises ``DamagedModelError`` when the description names what this code cannot build or the
    weights do not fit what it builds."""
    try:
        if description.get("format") != FORMAT:
            raise ValueError(f"network.json format {description.get('format')!r}, not {FORMAT}")
        cell = Cell(**description["cell"])
        tasks = [
            TaskSpec(**{**task, "class_weights": _tuple(task.get("class_weights"))})
            for task in description["tasks"]
        ]
        shape = tuple(int(n) for n in description["image_shape"])
        model = cell_method(cell).build_network(cell_model_parts(cell), tasks)
        shrink_to_shapes(model, {k: v.shape for k, v in state.items()}, torch.zeros(1, *shape))
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise DamagedModelError(
            f"the logged network cannot be rebuilt by this code: {type(error).__name__}: "
            f"{str(error)[:400]}"
        ) from None
    return model.eval(), shape


def _tuple(values: list[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)


def load_logged_network(uri: str, run_id: str) -> tuple[MultiTaskNet, tuple[int, ...]]:
    """The run's logged network in eval mode on the CPU, and its image shape (C, H, W)."""
    return rebuild_network(*read_logged_model(uri, run_id))


class PredictingNetwork:
    """What ``mlflow.pyfunc.load_model`` returns for a run's model: ``predict(images)`` with a
    float32 array (N, C, H, W) gives ``{task: array}``."""

    def __init__(self, model: MultiTaskNet):
        self.model = model

    @torch.no_grad()
    def predict(self, images: np.ndarray, params: dict[str, Any] | None = None) -> dict[str, Any]:
        outputs = self.model(torch.as_tensor(np.asarray(images, dtype=np.float32)))
        return {task: output.numpy() for task, output in outputs.items()}


def _load_pyfunc(path: str) -> PredictingNetwork:
    """MLflow's pyfunc entry point: ``path`` is the model's network folder."""
    model, _ = rebuild_network(*read_network_files(Path(path)))
    return PredictingNetwork(model)
