"""Evaluate a multitask model on a whole split."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from core.tasks import TaskSpec, weighted_task_losses


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    split: Dataset,
    tasks: Sequence[TaskSpec],
    device: torch.device,
    batch_size: int,
) -> dict[str, float]:
    """Metrics of every task over the full split, keyed ``<task>/<metric>``."""
    was_training = model.training
    model.eval()
    accumulators = {t.name: t.new_accumulator() for t in tasks}
    for batch in DataLoader(split, batch_size=batch_size, shuffle=False):
        outputs = model(batch["image"].to(device))
        for task in tasks:
            accumulators[task.name].update(outputs[task.name], batch[task.name].to(device))
    model.train(was_training)
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
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in DataLoader(split, batch_size=batch_size, shuffle=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        loss, _ = weighted_task_losses(model(batch["image"]), batch, tasks, loss_weights)
        total += loss.item() * len(batch["image"])
        count += len(batch["image"])
    model.train(was_training)
    return total / max(count, 1)
