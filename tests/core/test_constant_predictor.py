"""The best constant prediction of each task kind, and its metrics, on labels small enough to
score by hand: the floor below which the leaderboard calls a task starved."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import Dataset

from benchmarks.training.evaluation import constant_predictor_metrics
from core.tasks import SEG_IGNORE, make_task


class Labels(Dataset):
    """Samples holding only labels (the constant predictor never reads the image)."""

    def __init__(self, **labels: torch.Tensor):
        self.labels = labels

    def __len__(self) -> int:
        return len(next(iter(self.labels.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: values[index] for name, values in self.labels.items()}


def test_segmentation_predicts_the_most_frequent_class_everywhere():
    # 2 images of 2x2: class 1 on 5 pixels, class 0 on 2, one ignored pixel
    seg = torch.tensor([[[1, 1], [0, SEG_IGNORE]], [[1, 1], [1, 0]]])
    metrics = constant_predictor_metrics(Labels(seg=seg), [make_task("seg", 3)], batch_size=1)
    # predicting class 1 on the 7 valid pixels: IoU(1) = 5/7, IoU(0) = 0/2; class 2 absent
    assert metrics["seg/mIoU"] == pytest.approx(100 * (5 / 7 + 0) / 2)
    assert metrics["seg/pixel_acc"] == pytest.approx(100 * 5 / 7)


def test_normals_predict_the_normalised_mean_direction():
    up, right, invalid = [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    # one image of 1x5 pixels: three up, one right, one invalid (left out)
    normal = torch.tensor([up, up, right, invalid, up]).T.reshape(1, 3, 1, 5)
    metrics = constant_predictor_metrics(Labels(normal=normal), [make_task("normal")], 1)
    mean = torch.tensor([1.0, 0.0, 3.0]) / math.sqrt(10)  # (3 up + right) normalised
    to_up = math.degrees(math.acos(mean[2]))
    to_right = math.degrees(math.acos(mean[0]))
    assert metrics["normal/mean_angle"] == pytest.approx((3 * to_up + to_right) / 4, rel=1e-5)


def test_depth_and_maps_predict_the_mean_of_their_valid_values():
    depth = torch.tensor([[[[1.0, 3.0], [0.0, 2.0]]]])  # 0 is no depth: the mean is 2
    edge = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])  # mean 0.75, so MAE (0.75 + 3 x 0.25) / 4
    metrics = constant_predictor_metrics(
        Labels(depth=depth, edge=edge), [make_task("depth"), make_task("edge")], 1
    )
    assert metrics["depth/abs_err"] == pytest.approx((1 + 1 + 0) / 3)
    assert metrics["edge/mae"] == pytest.approx((0.75 + 3 * 0.25) / 4)


def test_the_floor_of_the_embedded_data_is_a_score_a_model_can_beat(tiny_bundle):
    """On real labels the floor is a number a model can beat (seg: below 100 mIoU)."""
    metrics = constant_predictor_metrics(tiny_bundle.splits["test"], tiny_bundle.tasks, 4)
    assert 0 < metrics["seg/mIoU"] < 100 and 0 < metrics["normal/mean_angle"] < 180
