"""Training losses per task kind. Each takes (prediction, target, task spec) and averages over
the valid pixels only (the label conventions are in ``core.tasks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from core.tasks import TaskSpec


def seg_loss(pred: torch.Tensor, target: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """Cross-entropy, optionally class-weighted, skipping ``ignore_value`` pixels."""
    weight = None
    if spec.class_weights is not None:
        weight = torch.tensor(spec.class_weights, dtype=pred.dtype, device=pred.device)
    return F.cross_entropy(pred, target, weight=weight, ignore_index=int(spec.ignore_value))


def channel_cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity along dim 1 of ``[N, C, H, W]`` tensors, each norm clamped to ``eps``.
    Same values as ``F.cosine_similarity(a, b, dim=1)``, written as plain sums because the
    channel-wise norm kernel took a quarter of the default CPU training step (measured 8.6 vs
    0.8 ms forward+backward at batch 16, 32x32)."""
    dot = (a * b).sum(dim=1)
    norm_a = (a * a).sum(dim=1).sqrt().clamp_min(eps)
    norm_b = (b * b).sum(dim=1).sqrt().clamp_min(eps)
    return dot / (norm_a * norm_b)


def normal_loss(pred: torch.Tensor, target: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """1 - cosine similarity, averaged over pixels whose ground-truth normal is non-zero."""
    valid = target.abs().sum(dim=1) > 0
    if not valid.any():
        return pred.sum() * 0.0
    cosine = channel_cosine(pred, target)
    return (1.0 - cosine[valid]).mean()


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    if not valid.any():
        return pred.sum() * 0.0
    return (pred[valid] - target[valid]).abs().mean()


def depth_loss(pred: torch.Tensor, target: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """L1 on pixels with depth > 0."""
    return _masked_l1(pred, target, target > 0)


def map_loss(pred: torch.Tensor, target: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """L1 on pixels that are not ``ignore_value`` (keypoint and edge maps)."""
    valid = torch.ones_like(target, dtype=torch.bool)
    if spec.ignore_value is not None:
        valid = target != spec.ignore_value
    return _masked_l1(pred, target, valid)
