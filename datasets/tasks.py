"""Task specs: everything downstream code needs to know about a dense prediction task.

Nothing outside this file branches on a task's name; it reads the spec (kind, channels, ignore
value, loss, metrics and their direction). Label conventions shared by every dataset:

- ``seg``: int64 ``[H, W]`` class indices, ``ignore_value`` (255) marks unlabelled pixels.
- ``normal``: float ``[3, H, W]`` unit vectors in the camera frame; an all-zero vector is invalid.
- ``depth``: float ``[1, H, W]`` metres; 0 is invalid.
- ``keypoint`` / ``edge``: float ``[1, H, W]`` maps in [0, 1]; ``ignore_value`` (if set) is invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TASK_KINDS = ("seg", "normal", "depth", "keypoint", "edge")
SEG_IGNORE = 255


@dataclass(frozen=True)
class MetricSpec:
    """One reported number of a task and which way is better."""

    name: str
    higher_is_better: bool
    in_delta_m: bool = True  # enters delta-m (variants of another metric do not)


@dataclass(frozen=True)
class TaskSpec:
    """A task: its output layout, its training loss and the metrics it is judged by."""

    name: str
    kind: str
    channels: int
    ignore_value: float | None
    loss: Callable[[torch.Tensor, torch.Tensor, TaskSpec], torch.Tensor]
    metrics: tuple[MetricSpec, ...]
    class_weights: tuple[float, ...] | None = None

    def compute_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(pred, target, self)


def _seg_loss(pred: torch.Tensor, target: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    weight = None
    if spec.class_weights is not None:
        weight = torch.tensor(spec.class_weights, dtype=pred.dtype, device=pred.device)
    return F.cross_entropy(pred, target, weight=weight, ignore_index=int(spec.ignore_value))


def _normal_loss(pred: torch.Tensor, target: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """1 - cosine similarity, averaged over pixels whose ground-truth normal is non-zero."""
    valid = target.abs().sum(dim=1) > 0
    if not valid.any():
        return pred.sum() * 0.0
    cosine = F.cosine_similarity(pred, target, dim=1, eps=1e-8)
    return (1.0 - cosine[valid]).mean()


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    if not valid.any():
        return pred.sum() * 0.0
    return (pred[valid] - target[valid]).abs().mean()


def _depth_loss(pred: torch.Tensor, target: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    return _masked_l1(pred, target, target > 0)


def _map_loss(pred: torch.Tensor, target: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    valid = torch.ones_like(target, dtype=torch.bool)
    if spec.ignore_value is not None:
        valid = target != spec.ignore_value
    return _masked_l1(pred, target, valid)


SEG_METRICS = (
    MetricSpec("mIoU", True),
    MetricSpec("pixel_acc", True),
    MetricSpec("mIoU_adashare", True, in_delta_m=False),
)
NORMAL_METRICS = (
    MetricSpec("mean_angle", False),
    MetricSpec("median_angle", False),
    MetricSpec("within_11.25", True),
    MetricSpec("within_22.5", True),
    MetricSpec("within_30", True),
)
DEPTH_METRICS = (
    MetricSpec("abs_err", False),
    MetricSpec("rel_err", False),
    MetricSpec("delta_1.25", True),
    MetricSpec("delta_1.25_2", True),
    MetricSpec("delta_1.25_3", True),
)
MAP_METRICS = (MetricSpec("mae", False),)


def make_task(
    kind: str,
    num_classes: int | None = None,
    name: str | None = None,
    class_weights: tuple[float, ...] | None = None,
) -> TaskSpec:
    """Build the spec of a task of a given kind; ``num_classes`` is required for ``seg``."""
    if kind == "seg":
        if not num_classes or num_classes < 2:
            raise ValueError(f"task 'seg' needs num_classes >= 2, got {num_classes!r}")
        return TaskSpec(
            name or kind, kind, num_classes, SEG_IGNORE, _seg_loss, SEG_METRICS, class_weights
        )
    if kind == "normal":
        return TaskSpec(name or kind, kind, 3, None, _normal_loss, NORMAL_METRICS)
    if kind == "depth":
        return TaskSpec(name or kind, kind, 1, 0.0, _depth_loss, DEPTH_METRICS)
    if kind in ("keypoint", "edge"):
        return TaskSpec(name or kind, kind, 1, None, _map_loss, MAP_METRICS)
    raise ValueError(f"unknown task kind {kind!r}; known kinds: {', '.join(TASK_KINDS)}")


def weighted_task_losses(
    outputs: Mapping[str, torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    tasks: Sequence[TaskSpec],
    loss_weights: Mapping[str, float],
    only: str | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(weighted sum, per-task losses) over ``tasks``, or over task ``only`` when given.
    Missing weights are 1. Per-task losses stay tensors: reading them syncs a GPU."""
    per_task = {
        t.name: t.compute_loss(outputs[t.name], batch[t.name])
        for t in tasks
        if only is None or t.name == only
    }
    total = sum(loss_weights.get(name, 1.0) * loss for name, loss in per_task.items())
    return total, per_task  # type: ignore[return-value]
