"""``cross_stitch``: Cross-Stitch Networks (Misra et al., CVPR 2016).

One encoder per task; after every stage a cross-stitch unit mixes the tasks' features linearly:
x_t <- sum_u alpha_tu x_u, with one learned weight per (stage, task, source task) (``weights:
scalar``, as Misra et al. and LibMTL) or one per channel as well (``weights: channel``, as
Vandenhende et al.). Initialised identity-leaning as in the paper: alpha_tt = 0.9, the other 0.1
split over the other tasks. Start and fusion learning rate: ``methods/fused_encoders.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from core.options import check_choice
from core.tasks import TaskSpec
from methods.fused_encoders import FusedTaskEncoders, FusionOptions
from methods.networks import ModelParts, MultiTaskNet
from methods.networks.task_encoders import TaskEncodersNet, self_leaning_weights
from methods.registry import register_method


class CrossStitchUnit(nn.Module):
    """Task ``index``'s row of the stitch: its mixing weights over all tasks' features."""

    def __init__(self, index: int, count: int, channels: int | None = None):
        """One weight per source task, or per source task and channel when ``channels``."""
        super().__init__()
        weights = self_leaning_weights(index, count)
        if channels is not None:
            weights = weights[:, None].repeat(1, channels)
        self.alpha = nn.Parameter(weights)

    def macs(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """One multiply-accumulate per source task for every output element."""
        return inputs[0].shape[0] * output.numel()

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:  # [T, B, C, H, W] -> [B, C, H, W]
        if self.alpha.dim() == 1:
            return torch.einsum("t,tbchw->bchw", self.alpha, stacked)
        return torch.einsum("tc,tbchw->bchw", self.alpha, stacked)


WEIGHTS = ("scalar", "channel")


@dataclass(frozen=True)
class CrossStitchOptions(FusionOptions):
    weights: str = field(
        default="scalar",
        metadata={"help": "scalar (one per task pair, Misra et al.) or channel (Vandenhende)"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("weights", self.weights, WEIGHTS)


@register_method("cross_stitch")
class CrossStitch(FusedTaskEncoders):
    Options = CrossStitchOptions
    paper = "Misra et al., Cross-stitch Networks for Multi-task Learning, CVPR 2016"

    def build_network(self, parts: ModelParts, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        per_channel = self.options.weights == "channel"

        def unit(stage: int, channels: int, index: int, count: int) -> CrossStitchUnit:
            return CrossStitchUnit(index, count, channels if per_channel else None)

        return self.with_fusion_lr(TaskEncodersNet(parts, tasks, fusion=unit))
