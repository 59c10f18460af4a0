"""Task losses against hand computation; task spec errors."""

from __future__ import annotations

import math

import pytest
import torch

from datasets.tasks import make_task


def test_seg_loss_ignores_255():
    task = make_task("seg", num_classes=2)
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 5.0]]]])  # [1, 2, 1, 2]
    target = torch.tensor([[[0, 255]]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert task.compute_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_normal_loss_is_one_minus_cosine_on_valid_pixels():
    task = make_task("normal")
    pred = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).T.reshape(1, 3, 1, 3)
    target = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 3)
    expected = ((1 - 1) + (1 - 1 / math.sqrt(2))) / 2
    assert task.compute_loss(pred, target).item() == pytest.approx(expected, rel=1e-6)


def test_depth_loss_is_l1_on_valid_pixels():
    task = make_task("depth")
    pred = torch.tensor([[[[1.0, 5.0, 7.0]]]])
    target = torch.tensor([[[[2.0, 4.5, 0.0]]]])
    assert task.compute_loss(pred, target).item() == pytest.approx((1.0 + 0.5) / 2)


def test_unknown_kind_and_missing_classes_are_clear_errors():
    with pytest.raises(ValueError, match="unknown task kind 'semantic'.*seg, normal"):
        make_task("semantic")
    with pytest.raises(ValueError, match="num_classes"):
        make_task("seg")


def test_weighted_task_losses_sum_by_hand_and_single_task():
    from datasets.tasks import weighted_task_losses

    tasks = (make_task("depth"), make_task("edge"))
    outputs = {"depth": torch.tensor([[[[1.0]]]]), "edge": torch.tensor([[[[0.5]]]])}
    batch = {"depth": torch.tensor([[[[3.0]]]]), "edge": torch.tensor([[[[0.0]]]])}
    total, per_task = weighted_task_losses(outputs, batch, tasks, {"depth": 2.0})
    assert total.item() == pytest.approx(2.0 * 2.0 + 1.0 * 0.5)
    assert per_task["edge"].item() == pytest.approx(0.5)
    only, parts = weighted_task_losses(outputs, batch, tasks, {"depth": 2.0}, only="edge")
    assert only.item() == pytest.approx(0.5) and set(parts) == {"edge"}
