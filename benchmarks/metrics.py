"""Evaluation metrics, accumulated over a whole split (never averages of per-batch values).

One accumulator per task kind; names and directions are declared in ``datasets.tasks``.
"""

from __future__ import annotations

import math

import torch

from datasets.tasks import TaskSpec


class SegMetrics:
    """Confusion matrix over all valid pixels of the split.

    - ``mIoU``: mean IoU over classes that occur in the ground truth or the prediction
      (union > 0), the usual definition.
    - ``mIoU_adashare``: the AdaShare/DiSparse evaluation, which averages IoU only over classes
      with a non-zero diagonal (at least one correctly predicted pixel). It ignores classes the
      model never gets right, so it is higher than ``mIoU`` on weak models; kept only to compare
      with the papers' numbers.
    - ``pixel_acc``: correct / valid pixels.
    """

    def __init__(self, task: TaskSpec):
        self.num_classes = task.channels
        self.ignore = int(task.ignore_value)
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        labels = pred.argmax(dim=1)
        valid = target != self.ignore
        index = target[valid] * self.num_classes + labels[valid]
        counts = torch.bincount(index.cpu(), minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes)

    def compute(self) -> dict[str, float]:
        cm = self.confusion.double()
        tp = cm.diag()
        union = cm.sum(0) + cm.sum(1) - tp
        iou = tp / union.clamp(min=1)
        present = union > 0
        nonzero = tp > 0
        total = cm.sum()
        return {
            "mIoU": 100 * iou[present].mean().item() if present.any() else math.nan,
            "pixel_acc": 100 * (tp.sum() / total).item() if total > 0 else math.nan,
            "mIoU_adashare": 100 * iou[nonzero].mean().item() if nonzero.any() else 0.0,
        }


class NormalMetrics:
    """Angular error in degrees between predicted and true normals, on pixels with a non-zero
    ground-truth normal. All angles are kept so the median is exact."""

    def __init__(self, task: TaskSpec):
        self.angles: list[torch.Tensor] = []

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        valid = target.abs().sum(dim=1) > 0
        cosine = torch.nn.functional.cosine_similarity(pred, target, dim=1, eps=1e-8)
        angle = torch.rad2deg(torch.acos(cosine[valid].clamp(-1.0, 1.0)))
        self.angles.append(angle.detach().float().cpu())

    def compute(self) -> dict[str, float]:
        angles = torch.cat(self.angles) if self.angles else torch.empty(0)
        if angles.numel() == 0:
            return {
                m: math.nan
                for m in ("mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30")
            }
        return {
            "mean_angle": angles.double().mean().item(),
            # lower median, as numpy's "lower" method: an element of the data, no interpolation
            "median_angle": angles.median().item(),
            "within_11.25": 100 * (angles < 11.25).double().mean().item(),
            "within_22.5": 100 * (angles < 22.5).double().mean().item(),
            "within_30": 100 * (angles < 30).double().mean().item(),
        }


class DepthMetrics:
    """Absolute error (metres), relative error and threshold accuracies on pixels with depth > 0."""

    def __init__(self, task: TaskSpec):
        self.sums = torch.zeros(5, dtype=torch.float64)
        self.count = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        valid = target > 0
        p = pred[valid].double().cpu()
        g = target[valid].double().cpu()
        ratio = torch.maximum(p / g, g / p.clamp(min=1e-9))
        ratio = torch.where(p > 0, ratio, torch.full_like(ratio, math.inf))
        self.sums += torch.stack(
            [
                (p - g).abs().sum(),
                ((p - g).abs() / g).sum(),
                (ratio < 1.25).sum(),
                (ratio < 1.25**2).sum(),
                (ratio < 1.25**3).sum(),
            ]
        )
        self.count += g.numel()

    def compute(self) -> dict[str, float]:
        n = max(self.count, 1)
        abs_err, rel_err, d1, d2, d3 = (self.sums / n).tolist()
        if self.count == 0:
            abs_err = rel_err = d1 = d2 = d3 = math.nan
        return {
            "abs_err": abs_err,
            "rel_err": rel_err,
            "delta_1.25": 100 * d1,
            "delta_1.25_2": 100 * d2,
            "delta_1.25_3": 100 * d3,
        }


class MapMetrics:
    """Mean absolute error of a per-pixel map (keypoints, edges), skipping ``ignore_value``."""

    def __init__(self, task: TaskSpec):
        self.ignore = task.ignore_value
        self.total = 0.0
        self.count = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        valid = torch.ones_like(target, dtype=torch.bool)
        if self.ignore is not None:
            valid = target != self.ignore
        self.total += (pred[valid] - target[valid]).abs().double().sum().item()
        self.count += int(valid.sum())

    def compute(self) -> dict[str, float]:
        return {"mae": self.total / self.count if self.count else math.nan}


ACCUMULATORS = {
    "seg": SegMetrics,
    "normal": NormalMetrics,
    "depth": DepthMetrics,
    "keypoint": MapMetrics,
    "edge": MapMetrics,
}


def make_accumulator(task: TaskSpec):
    """The accumulator for a task's kind; its ``compute`` returns the task's declared metrics."""
    return ACCUMULATORS[task.kind](task)
