"""Evaluate a multitask model on a whole split."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from core.progress import Progress
from core.tasks import TaskSpec, weighted_task_losses


def _eval_batches(
    model: torch.nn.Module,
    split: Dataset,
    device: torch.device,
    batch_size: int,
    num_workers: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """The split in order, on ``device`` (read by ``num_workers`` loader processes, pinned on a
    GPU), with the model in eval mode meanwhile."""
    was_training = model.training
    model.eval()
    loader = DataLoader(
        split,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    try:
        for batch in loader:
            yield {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    split: Dataset,
    tasks: Sequence[TaskSpec],
    device: torch.device,
    batch_size: int,
    num_workers: int = 0,
) -> dict[str, float]:
    """Metrics of every task over the full split, keyed ``<task>/<metric>``."""
    accumulators = {t.name: t.new_accumulator() for t in tasks}
    progress = Progress("  evaluating", math.ceil(len(split) / batch_size))
    for batch in _eval_batches(model, split, device, batch_size, num_workers):
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
    num_workers: int = 0,
) -> float:
    """The weighted multitask loss over a whole split (mean over samples), in eval mode. The sum
    stays on the device (float64, the sum a host loop of ``.item()`` values would make) and is
    read once: no wait for the device after every batch."""
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for batch in _eval_batches(model, split, device, batch_size, num_workers):
        loss, _ = weighted_task_losses(model(batch["image"]), batch, tasks, loss_weights)
        total += loss.detach().double() * len(batch["image"])
        count += len(batch["image"])
    return total.item() / max(count, 1)


def _label_batches(split: Dataset, batch_size: int, num_workers: int = 0):
    return DataLoader(split, batch_size=batch_size, shuffle=False, num_workers=num_workers)


@torch.no_grad()
def constant_predictor_metrics(
    split: Dataset, tasks: Sequence[TaskSpec], batch_size: int, num_workers: int = 0
) -> dict[str, float]:
    """Metrics of each task's best constant prediction (``core.constant_predictor``), fitted to
    the split's own labels, keyed ``<task>/<metric>``: the floor of "task starved"."""
    fits = {t.name: t.new_constant_fit() for t in tasks}
    for batch in _label_batches(split, batch_size, num_workers):
        for task in tasks:
            fits[task.name].update(batch[task.name])
    accumulators = {t.name: t.new_accumulator() for t in tasks}
    for batch in _label_batches(split, batch_size, num_workers):
        for task in tasks:
            target = batch[task.name]
            accumulators[task.name].update(fits[task.name].prediction(target), target)
    return {
        f"{task}/{metric}": value
        for task, acc in accumulators.items()
        for metric, value in acc.compute().items()
    }
