"""Evaluation metrics, accumulated over a whole split (never averages of per-batch values).

One accumulator per task kind. Each declares the metrics it reports (``METRICS``: name and
direction) beside the code that computes them, and ``compute`` refuses to return anything else,
so a renamed or missing metric is an error here, not a silent NaN in delta-m downstream.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

from core.losses import channel_cosine

if TYPE_CHECKING:
    from core.tasks import TaskSpec


@dataclass(frozen=True)
class MetricSpec:
    """One reported number of a task and which way is better."""

    name: str
    higher_is_better: bool
    in_delta_m: bool = True  # enters the all-metrics delta-m (variants of another metric do not)
    main: bool = False  # the task's one metric in the main-metric delta-m (one per task kind)


class MetricMismatchError(RuntimeError):
    """An accumulator returned metrics other than the ones it declares."""


class MetricAccumulator(ABC):
    """Accumulates one task's predictions over a split; ``compute`` gives its declared metrics."""

    METRICS: ClassVar[tuple[MetricSpec, ...]]

    def __init__(self, task: TaskSpec):
        self.task = task

    @abstractmethod
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch (predictions and labels in the task's layout)."""

    @abstractmethod
    def values(self) -> dict[str, float]:
        """The metrics over everything added so far, keyed by metric name."""

    def compute(self) -> dict[str, float]:
        values = self.values()
        declared = [m.name for m in self.METRICS]
        if list(values) != declared:
            raise MetricMismatchError(
                f"{type(self).__name__} (task {self.task.name!r}, kind {self.task.kind!r}) "
                f"returned metrics {list(values)} but declares {declared}; keep METRICS and "
                "values() in step"
            )
        return values

    @classmethod
    def nan_values(cls) -> dict[str, float]:
        return {m.name: math.nan for m in cls.METRICS}


class SegMetrics(MetricAccumulator):
    """Confusion matrix over all valid pixels of the split.

    - ``mIoU``: mean IoU over classes that occur in the ground truth or the prediction
      (union > 0), the usual definition.
    - ``mIoU_adashare``: the AdaShare/DiSparse evaluation, which averages IoU only over classes
      with a non-zero diagonal (at least one correctly predicted pixel). It ignores classes the
      model never gets right, so it is higher than ``mIoU`` on weak models; kept only to compare
      with the papers' numbers.
    - ``pixel_acc``: correct / valid pixels.
    - ``pixel_acc_adashare``: correct / all pixels, ignored ones counted as wrong, as the
      AdaShare/DiSparse Cityscapes evaluation does; only for comparing with their numbers.
    """

    METRICS = (
        MetricSpec("mIoU", True, main=True),
        MetricSpec("pixel_acc", True),
        MetricSpec("mIoU_adashare", True, in_delta_m=False),
        MetricSpec("pixel_acc_adashare", True, in_delta_m=False),
    )

    def __init__(self, task: TaskSpec):
        super().__init__(task)
        self.num_classes = task.channels
        self.ignore = int(task.ignore_value)
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        self.ignored = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        labels = pred.argmax(dim=1)
        valid = target != self.ignore
        self.ignored += int((~valid).sum())
        index = target[valid] * self.num_classes + labels[valid]
        counts = torch.bincount(index.cpu(), minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes)

    def values(self) -> dict[str, float]:
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
            "pixel_acc_adashare": (
                100 * tp.sum().item() / (total.item() + self.ignored)
                if total + self.ignored > 0
                else math.nan
            ),
        }


class NormalMetrics(MetricAccumulator):
    """Angular error in degrees between predicted and true normals, on pixels with a non-zero
    ground-truth normal. All angles are kept so the median is exact."""

    METRICS = (
        MetricSpec("mean_angle", False, main=True),
        MetricSpec("median_angle", False),
        MetricSpec("within_11.25", True),
        MetricSpec("within_22.5", True),
        MetricSpec("within_30", True),
    )

    def __init__(self, task: TaskSpec):
        super().__init__(task)
        self.angles: list[torch.Tensor] = []

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        valid = target.abs().sum(dim=1) > 0
        cosine = channel_cosine(pred, target)
        angle = torch.rad2deg(torch.acos(cosine[valid].clamp(-1.0, 1.0)))
        self.angles.append(angle.detach().float().cpu())

    def values(self) -> dict[str, float]:
        angles = torch.cat(self.angles) if self.angles else torch.empty(0)
        if angles.numel() == 0:
            return self.nan_values()
        return {
            "mean_angle": angles.double().mean().item(),
            # lower median, as numpy's "lower" method: an element of the data, no interpolation
            "median_angle": angles.median().item(),
            "within_11.25": 100 * (angles < 11.25).double().mean().item(),
            "within_22.5": 100 * (angles < 22.5).double().mean().item(),
            "within_30": 100 * (angles < 30).double().mean().item(),
        }


class DepthMetrics(MetricAccumulator):
    """Absolute error (metres), relative error and threshold accuracies on pixels with depth > 0."""

    METRICS = (
        MetricSpec("abs_err", False, main=True),
        MetricSpec("rel_err", False),
        MetricSpec("delta_1.25", True),
        MetricSpec("delta_1.25_2", True),
        MetricSpec("delta_1.25_3", True),
    )

    def __init__(self, task: TaskSpec):
        super().__init__(task)
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

    def values(self) -> dict[str, float]:
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


class MapMetrics(MetricAccumulator):
    """Mean absolute error of a per-pixel map (keypoints, edges), skipping ``ignore_value``."""

    METRICS = (MetricSpec("mae", False, main=True),)

    def __init__(self, task: TaskSpec):
        super().__init__(task)
        self.ignore = task.ignore_value
        self.total = 0.0
        self.count = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        valid = torch.ones_like(target, dtype=torch.bool)
        if self.ignore is not None:
            valid = target != self.ignore
        self.total += (pred[valid] - target[valid]).abs().double().sum().item()
        self.count += int(valid.sum())

    def values(self) -> dict[str, float]:
        return {"mae": self.total / self.count if self.count else math.nan}
