"""Evaluation passes: the test loss the selection reads summed on the device equals the host
loop's sum, and loader workers read the same split in the same order."""

from __future__ import annotations

import torch

from benchmarks.training.evaluation import evaluate, split_loss
from core.tasks import weighted_task_losses


def test_the_device_sum_of_the_test_loss_is_the_host_loops_sum(tiny_model, tiny_bundle):
    split, tasks = tiny_bundle.splits["test"], tiny_bundle.tasks
    weights = {"seg": 1.0, "normal": 20.0}
    tiny_model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(split), 3):  # batches of 3, the last one shorter
            items = [split[i] for i in range(start, min(start + 3, len(split)))]
            batch = {k: torch.stack([item[k] for item in items]) for k in items[0]}
            loss, _ = weighted_task_losses(tiny_model(batch["image"]), batch, tasks, weights)
            total += loss.item() * len(items)
            count += len(items)
    measured = split_loss(tiny_model, split, tasks, weights, torch.device("cpu"), 3)
    assert measured == total / count


def test_loader_workers_evaluate_to_the_same_metrics(tiny_model, tiny_bundle):
    split, tasks, cpu = tiny_bundle.splits["test"], tiny_bundle.tasks, torch.device("cpu")
    alone = evaluate(tiny_model, split, tasks, cpu, 3)
    assert evaluate(tiny_model, split, tasks, cpu, 3, num_workers=2) == alone
    assert split_loss(tiny_model, split, tasks, {}, cpu, 3, 2) == split_loss(
        tiny_model, split, tasks, {}, cpu, 3
    )
