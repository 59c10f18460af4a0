"""Evaluate a multitask model on a whole split."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from core.progress import Progress
from core.tasks import TaskSpec, weighted_task_losses


def _eval_batches(
    model: torch.nn.Module, split: Dataset, device: torch.device, batch_size: int
) -> Iterator[dict[str, torch.Tensor]]:
    """The split in order, on ``device``, with the model in eval mode meanwhile."""
    was_training = model.training
    model.eval()
    try:
        for batch in DataLoader(split, batch_size=batch_size, shuffle=False):
            yield {k: v.to(device) for k, v in batch.items()}
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    split: Dataset,
    tasks: Sequence[TaskSpec],
    device: torch.device,
    batch_size: int,
) -> dict[str, float]:
    """Metrics of every task over the full split, keyed ``<task>/<metric>``."""
    accumulators = {t.name: t.new_accumulator() for t in tasks}
    progress = Progress("  evaluating", math.ceil(len(split) / batch_size))
    for batch in _eval_batches(model, split, device, batch_size):
        outputs = model(batch["image"])
        for task in tasks:
            accumulators[task.name].update(outputs[task.name], batch[task.name])
        progress.step()
    return {
        f"{task}/{metric}": value
        for task, acc in accumulators.items()
        for metric, value in acc.compute().items()
    }


@torch.no_grad()
def split_loss(
    model: torch.nn.Module,
    split: Dataset,
    tasks: Sequence[TaskSpec],
    loss_weights: dict[str, float],
    device: torch.device,
    batch_size: int,
) -> float:
    """The weighted multitask loss over a whole split (mean over samples), in eval mode."""
    total, count = 0.0, 0
    for batch in _eval_batches(model, split, device, batch_size):
        loss, _ = weighted_task_losses(model(batch["image"]), batch, tasks, loss_weights)
        total += loss.item() * len(batch["image"])
        count += len(batch["image"])
    return total / max(count, 1)
