"""Task kinds and task specs: everything downstream code needs to know about a dense prediction
task.

A task *kind* is declared once, in ``TASK_KINDS``: its loss, its metric accumulator (which itself
declares the metrics, their directions and how they are computed), its output channels and its
ignore value. A ``TaskSpec`` is a named task of a kind; nothing outside this package branches on a
task's name or kind. Label conventions shared by every dataset:

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

from core.constant_predictor import (
    ConstantFit,
    MeanDepth,
    MeanDirection,
    MeanValue,
    MostFrequentClass,
)
from core.losses import depth_loss, map_loss, normal_loss, seg_loss
from core.metrics import (
    DepthMetrics,
    MapMetrics,
    MetricAccumulator,
    MetricSpec,
    NormalMetrics,
    SegMetrics,
)

SEG_IGNORE = 255
Loss = Callable[[torch.Tensor, torch.Tensor, "TaskSpec"], torch.Tensor]


@dataclass(frozen=True)
class TaskKind:
    """One kind of dense prediction: how it is trained and how it is judged."""

    loss: Loss
    accumulator: type[MetricAccumulator]
    channels: int | None  # None: one channel per class (given when the task is made)
    ignore_value: float | None
    constant: type[ConstantFit]  # its best constant prediction (the "task starved" floor)
    softmax_output: bool = False  # logits of a softmax (a temperature applies to them)


TASK_KINDS: dict[str, TaskKind] = {
    "seg": TaskKind(seg_loss, SegMetrics, None, SEG_IGNORE, MostFrequentClass, softmax_output=True),
    "normal": TaskKind(normal_loss, NormalMetrics, 3, None, MeanDirection),
    "depth": TaskKind(depth_loss, DepthMetrics, 1, 0.0, MeanDepth),
    "keypoint": TaskKind(map_loss, MapMetrics, 1, None, MeanValue),
    "edge": TaskKind(map_loss, MapMetrics, 1, None, MeanValue),
}


@dataclass(frozen=True)
class TaskSpec:
    """A named task of a kind, with its output channels and optional class weights."""

    name: str
    kind: str
    channels: int
    ignore_value: float | None
    class_weights: tuple[float, ...] | None = None

    @property
    def softmax_output(self) -> bool:
        return TASK_KINDS[self.kind].softmax_output

    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        return TASK_KINDS[self.kind].accumulator.METRICS

    def compute_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return TASK_KINDS[self.kind].loss(pred, target, self)

    def new_accumulator(self) -> MetricAccumulator:
        return TASK_KINDS[self.kind].accumulator(self)

    def new_constant_fit(self) -> ConstantFit:
        return TASK_KINDS[self.kind].constant(self.channels, self.ignore_value)


def make_task(
    kind: str,
    num_classes: int | None = None,
    name: str | None = None,
    class_weights: tuple[float, ...] | None = None,
) -> TaskSpec:
    """The spec of a task of a given kind; ``num_classes`` is required for ``seg``."""
    if kind not in TASK_KINDS:
        raise ValueError(f"unknown task kind {kind!r}; known kinds: {', '.join(TASK_KINDS)}")
    declared = TASK_KINDS[kind]
    channels = declared.channels
    if channels is None:
        if not num_classes or num_classes < 2:
            raise ValueError(f"task {kind!r} needs num_classes >= 2, got {num_classes!r}")
        channels = num_classes
    return TaskSpec(name or kind, kind, channels, declared.ignore_value, class_weights)


def metric_specs(tasks: Mapping[str, str]) -> dict[str, MetricSpec]:
    """``{"<task>/<metric>": spec}`` for tasks given as ``{name: kind}``."""
    return {
        f"{name}/{metric.name}": metric
        for name, kind in tasks.items()
        for metric in TASK_KINDS[kind].accumulator.METRICS
    }


def labels_at(target: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Labels resized (nearest) to a prediction's spatial ``size``: losses at the output stride."""
    if target.shape[-2:] == size:
        return target
    planar = target if target.dim() == 4 else target[:, None]
    resized = F.interpolate(planar.float(), size=size, mode="nearest").to(target.dtype)
    return resized if target.dim() == 4 else resized[:, 0]


def weighted_task_losses(
    outputs: Mapping[str, torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    tasks: Sequence[TaskSpec],
    loss_weights: Mapping[str, float],
    only: str | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(weighted sum, per-task losses) over ``tasks``, or over task ``only`` when given.
    Missing weights are 1; labels follow the predictions' size (``labels_at``). Per-task losses
    stay tensors: reading them syncs a GPU."""
    per_task = {
        t.name: t.compute_loss(
            outputs[t.name], labels_at(batch[t.name], outputs[t.name].shape[-2:])
        )
        for t in tasks
        if only is None or t.name == only
    }
    total = sum(loss_weights.get(name, 1.0) * loss for name, loss in per_task.items())
    return total, per_task  # type: ignore[return-value]
