"""What a method sees when it chooses masks: the model, the tasks and a source of batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from datasets.tasks import TaskSpec
from methods.networks.base import MultiTaskNet

Batch = dict[str, torch.Tensor]


@dataclass
class PruneContext:
    model: MultiTaskNet
    tasks: tuple[TaskSpec, ...]
    loss_weights: dict[str, float]
    sparsity: float
    batches: Callable[[int], Iterator[Batch]]  # n -> n training batches, already on the device
    generator: torch.Generator  # seeded; every random choice of a method draws from it

    def task(self, name: str) -> TaskSpec:
        return next(t for t in self.tasks if t.name == name)
