"""``cross_stitch``: Cross-Stitch Networks (Misra et al., CVPR 2016).

One encoder per task; after every stage a cross-stitch unit mixes the tasks' features linearly:
x_t <- sum_u alpha_tu x_u, one learned scalar per (stage, task, source task). Initialised
identity-leaning as in the paper: alpha_tt = 0.9, the other 0.1 split over the other tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core.tasks import TaskSpec
from methods.hparams import NoHparams
from methods.lifecycle import Architecture
from methods.networks import Backbone, MultiTaskNet
from methods.networks.task_encoders import TaskEncodersNet, self_leaning_weights
from methods.registry import register_method


class CrossStitchUnit(nn.Module):
    """Task ``index``'s row of the stitch: its mixing weights over all tasks' features."""

    def __init__(self, index: int, count: int):
        super().__init__()
        self.alpha = nn.Parameter(self_leaning_weights(index, count))

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:  # [T, B, C, H, W] -> [B, C, H, W]
        return torch.einsum("t,tbchw->bchw", self.alpha, stacked)


@register_method("cross_stitch")
class CrossStitch(Architecture):
    Hparams = NoHparams
    paper = "Misra et al., Cross-stitch Networks for Multi-task Learning, CVPR 2016"

    def build_network(self, backbone: Backbone, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        return TaskEncodersNet(
            backbone, tasks, fusion=lambda stage, channels, i, n: CrossStitchUnit(i, n)
        )
