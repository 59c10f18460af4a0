"""MTAN's task attention modules (Liu et al., End-to-End Multi-Task Learning with Attention,
CVPR 2019), built on the stages of any backbone.

Each task has, per stage s, a soft attention mask a = sigmoid(BN(conv1x1(ReLU(BN(conv1x1(in))))))
over the shared stage-s features f_s; the task's attended feature is a * f_s. The mask's input is
f_s alone at the first stage, then f_s concatenated with the task's previous attended feature,
carried to stage s by a 3x3 conv-BN-ReLU and resized to f_s. (The paper reads f_s inside each
block; here it is read at the stage outputs, the granularity every backbone shares.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from core.tasks import TaskSpec
from methods.networks.backbone import Backbone, cut_stages
from methods.networks.base import MultiTaskNet, owned_by


class TaskAttention(nn.Module):
    """One task's attention at one stage."""

    def __init__(self, channels: int, previous_channels: int | None):
        super().__init__()
        in_channels = channels + (previous_channels or 0)
        self.carry = None
        if previous_channels is not None:
            self.carry = nn.Sequential(
                nn.Conv2d(previous_channels, previous_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(previous_channels),
                nn.ReLU(inplace=True),
            )
        self.gate = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.Sigmoid(),
        )

    def forward(
        self, shared: torch.Tensor, previous: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(attended feature, attention mask in [0, 1])."""
        inputs = shared
        if previous is not None and self.carry is not None:
            carried = F.interpolate(
                self.carry(previous), size=shared.shape[-2:], mode="bilinear", align_corners=False
            )
            inputs = torch.cat([shared, carried], dim=1)
        mask = self.gate(inputs)
        return mask * shared, mask


class AttentionNet(MultiTaskNet):
    def __init__(self, backbone: Backbone, tasks: Sequence[TaskSpec]):
        heads = {t.name: backbone.make_head(backbone.out_channels, t.channels) for t in tasks}
        super().__init__(backbone.make_encoder(), heads)
        self.stage_ends = backbone.stage_ends
        channels = backbone.stage_channels
        self.attention = nn.ModuleDict(
            {
                t.name: nn.ModuleList(
                    TaskAttention(c, channels[s - 1] if s else None) for s, c in enumerate(channels)
                )
                for t in tasks
            }
        )

    def task_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        attended: dict[str, torch.Tensor | None] = {t: None for t in self.attention}
        shared = x
        for s, stage in enumerate(cut_stages(self.encoder, self.stage_ends)):
            shared = stage(shared)
            for task, modules in self.attention.items():
                attended[task], _ = modules[s](shared, attended[task])
        return attended  # type: ignore[return-value]

    def parameter_owners(self) -> dict[str, str]:
        owners = super().parameter_owners()
        for task, modules in self.attention.items():
            owners.update(owned_by(f"attention.{task}", modules, task))
        return owners
