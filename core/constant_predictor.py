"""The best constant prediction of a task, fitted to a split's labels: the floor its metrics must
beat for a network to have learned anything of the task.

A leaderboard row whose task scores no better than this floor has a head that predicts one value
everywhere ("task starved"): delta-m averages that task's collapse with the other tasks' changes
and can call the row a tie, so the leaderboard names it. The constant is fitted to the very
labels it is scored on, so it is the best constant there is, a floor no honest model falls to:
- ``seg``: the most frequent valid class, everywhere;
- ``normal``: the mean of the valid normals, normalised;
- ``depth``, ``keypoint``, ``edge``: the mean of the valid values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class ConstantFit(ABC):
    """Sufficient statistics of a task's labels, streamed batch by batch, and the constant
    prediction they give (in the layout the task's network head outputs)."""

    def __init__(self, channels: int, ignore_value: float | None):
        self.channels, self.ignore_value = channels, ignore_value

    @abstractmethod
    def update(self, target: torch.Tensor) -> None:
        """Add one batch of labels."""

    @abstractmethod
    def value(self) -> torch.Tensor:
        """The constant prediction of one pixel, ``[channels]``."""

    def prediction(self, target: torch.Tensor) -> torch.Tensor:
        """The constant over a batch of ``target``'s shape: ``[B, channels, H, W]``."""
        batch, height, width = target.shape[0], target.shape[-2], target.shape[-1]
        return self.value().view(1, -1, 1, 1).expand(batch, -1, height, width).float()


class MostFrequentClass(ConstantFit):
    """Segmentation: logits that pick the most frequent valid class everywhere."""

    def __init__(self, channels: int, ignore_value: float | None):
        super().__init__(channels, ignore_value)
        self.counts = torch.zeros(channels, dtype=torch.int64)

    def update(self, target: torch.Tensor) -> None:
        valid = target[target != self.ignore_value] if self.ignore_value is not None else target
        self.counts += torch.bincount(valid.flatten().cpu(), minlength=self.channels)

    def value(self) -> torch.Tensor:
        logits = torch.zeros(self.channels)
        logits[int(torch.argmax(self.counts))] = 1.0
        return logits


class MeanDirection(ConstantFit):
    """Surface normals: the normalised mean of the valid (non-zero) normals."""

    def __init__(self, channels: int, ignore_value: float | None):
        super().__init__(channels, ignore_value)
        self.total = torch.zeros(channels, dtype=torch.float64)

    def update(self, target: torch.Tensor) -> None:
        vectors = target.movedim(1, -1).reshape(-1, self.channels).double().cpu()
        self.total += vectors[vectors.abs().sum(dim=1) > 0].sum(dim=0)

    def value(self) -> torch.Tensor:
        return (self.total / self.total.norm().clamp(min=1e-12)).float()


class MeanValue(ConstantFit):
    """Depth and per-pixel maps: the mean of the valid values (depth: > 0; maps: not the
    ignore value)."""

    def __init__(self, channels: int, ignore_value: float | None, positive_only: bool = False):
        super().__init__(channels, ignore_value)
        self.positive_only = positive_only
        self.total, self.count = 0.0, 0

    def update(self, target: torch.Tensor) -> None:
        values = target.double().cpu()
        if self.positive_only:
            values = values[values > 0]
        elif self.ignore_value is not None:
            values = values[values != self.ignore_value]
        self.total += float(values.sum())
        self.count += values.numel()

    def value(self) -> torch.Tensor:
        return torch.full((self.channels,), self.total / max(self.count, 1))


class MeanDepth(MeanValue):
    """Depth: the mean of the valid (positive) depths."""

    def __init__(self, channels: int, ignore_value: float | None):
        super().__init__(channels, ignore_value, positive_only=True)
