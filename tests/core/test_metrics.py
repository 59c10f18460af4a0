"""Metrics against values worked out by hand on tiny arrays."""

from __future__ import annotations

import math

import pytest
import torch

from core.tasks import make_task


def one_hot_logits(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()


def test_seg_miou_pixel_acc_and_adashare_variant():
    task = make_task("seg", num_classes=4)
    target = torch.tensor([[[0, 0, 1, 1], [2, 2, 255, 3]]])
    pred = torch.tensor([[[0, 1, 1, 1], [2, 0, 0, 0]]])
    acc = task.new_accumulator()
    acc.update(one_hot_logits(pred, 4), target)
    out = acc.compute()
    # valid pixels: 7 (one ignored); correct: (0,0),(0,2),(0,3),(1,0) -> 4
    assert out["pixel_acc"] == pytest.approx(100 * 4 / 7)
    # IoU: c0: tp1 / (gt2 + pred3 - 1) = 1/4; c1: 2/(2+3-2)=2/3; c2: 1/(2+1-1)=1/2; c3: 0/(1+0)=0
    assert out["mIoU"] == pytest.approx(100 * (1 / 4 + 2 / 3 + 1 / 2 + 0) / 4)
    # AdaShare/DiSparse average only classes with a non-zero diagonal: c0, c1, c2
    assert out["mIoU_adashare"] == pytest.approx(100 * (1 / 4 + 2 / 3 + 1 / 2) / 3)


def test_seg_accumulates_over_batches_not_batch_means():
    task = make_task("seg", num_classes=2)
    a_t, a_p = torch.tensor([[[0, 0, 0, 1]]]), torch.tensor([[[0, 0, 0, 0]]])
    b_t, b_p = torch.tensor([[[1, 1]]]), torch.tensor([[[1, 1]]])
    acc = task.new_accumulator()
    acc.update(one_hot_logits(a_p, 2), a_t)
    acc.update(one_hot_logits(b_p, 2), b_t)
    # total confusion: c0 tp3 fp1(gt1 predicted 0) ; c1 tp2 fn1
    iou0, iou1 = 3 / 4, 2 / 3
    assert acc.compute()["mIoU"] == pytest.approx(100 * (iou0 + iou1) / 2)
    # the mean of the two per-batch mIoUs would differ: (3/4 / 2 + 1) / 2
    assert acc.compute()["mIoU"] != pytest.approx(100 * ((0.75 + 0) / 2 + 1.0) / 2)


def unit(angle_deg: float) -> list[float]:
    r = math.radians(angle_deg)
    return [math.sin(r), 0.0, math.cos(r)]


def test_normal_angles_median_and_thresholds():
    task = make_task("normal")
    angles = [0.0, 10.0, 20.0, 29.0, 60.0]
    pred = torch.tensor([unit(a) for a in angles] + [unit(5.0)]).T.reshape(1, 3, 1, 6)
    target = torch.tensor([unit(0.0)] * 5 + [[0.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 6)
    acc = task.new_accumulator()
    acc.update(pred * 3.0, target)  # prediction length must not matter; last pixel is invalid
    out = acc.compute()
    assert out["mean_angle"] == pytest.approx(sum(angles) / 5, abs=1e-3)
    assert out["median_angle"] == pytest.approx(20.0, abs=1e-3)
    assert out["within_11.25"] == pytest.approx(40.0)
    assert out["within_22.5"] == pytest.approx(60.0)
    assert out["within_30"] == pytest.approx(80.0)


def test_normal_median_over_all_pixels_of_the_split():
    task = make_task("normal")
    acc = task.new_accumulator()
    for batch_angles in ([0.0, 1.0, 2.0], [50.0, 60.0]):
        n = len(batch_angles)
        pred = torch.tensor([unit(a) for a in batch_angles]).T.reshape(1, 3, 1, n)
        acc.update(pred, torch.tensor([unit(0.0)] * n).T.reshape(1, 3, 1, n))
    # batch medians are 1 and 55 (mean 28); the split median of 0,1,2,50,60 is 2
    assert acc.compute()["median_angle"] == pytest.approx(2.0, abs=1e-3)


def test_depth_errors_and_threshold_accuracy():
    task = make_task("depth")
    target = torch.tensor([[[[1.0, 2.0, 4.0, 0.0]]]])
    pred = torch.tensor([[[[1.1, 3.0, 2.0, 9.0]]]])  # last pixel is invalid (gt 0)
    acc = task.new_accumulator()
    acc.update(pred, target)
    out = acc.compute()
    assert out["abs_err"] == pytest.approx((0.1 + 1.0 + 2.0) / 3)
    assert out["rel_err"] == pytest.approx((0.1 / 1 + 1.0 / 2 + 2.0 / 4) / 3)
    # ratios max(p/g, g/p): 1.1, 1.5, 2.0 -> <1.25: 1; <1.5625: 2; <1.953: 2
    assert out["delta_1.25"] == pytest.approx(100 / 3)
    assert out["delta_1.25_2"] == pytest.approx(200 / 3)
    assert out["delta_1.25_3"] == pytest.approx(200 / 3)


@pytest.mark.parametrize("kind", ["keypoint", "edge"])
def test_map_mae(kind):
    acc = make_task(kind).new_accumulator()
    acc.update(torch.tensor([[[[0.5, 1.0]]]]), torch.tensor([[[[0.0, 0.75]]]]))
    acc.update(torch.tensor([[[[0.0]]]]), torch.tensor([[[[1.0]]]]))
    assert acc.compute()["mae"] == pytest.approx((0.5 + 0.25 + 1.0) / 3)


def test_seg_pixel_acc_adashare_counts_ignored_pixels_as_wrong():
    task = make_task("seg", num_classes=2)
    target = torch.tensor([[[0, 1, 255, 255]]])
    pred = torch.tensor([[[0, 0, 1, 1]]])
    acc = task.new_accumulator()
    acc.update(one_hot_logits(pred, 2), target)
    values = acc.compute()
    assert values["pixel_acc"] == pytest.approx(100 * 1 / 2)  # valid pixels only
    assert values["pixel_acc_adashare"] == pytest.approx(100 * 1 / 4)  # ignored ones are wrong
