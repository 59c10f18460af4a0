"""``nddr_cnn``: Neural Discriminative Dimensionality Reduction (Gao et al., CVPR 2019).

One encoder per task; after every stage each task's next input is ReLU(BN(conv1x1(concat of all
tasks' features))), the 1x1 conv initialised as the paper's diagonal blocks: 0.9 * identity on the
task's own channels and 0.1 * identity split over the other tasks; BatchNorm momentum 0.05 as in
the authors' and Vandenhende et al.'s code. Fusion comes after every encoder stage (on the
default small CNN the first stage is the stem block). Start and fusion learning rate:
``methods/fused_encoders.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from core.tasks import TaskSpec
from methods.fused_encoders import FusedTaskEncoders, FusionOptions
from methods.networks import ModelParts, MultiTaskNet
from methods.networks.task_encoders import TaskEncodersNet, self_leaning_weights
from methods.registry import register_method


class NDDRLayer(nn.Module):
    def __init__(self, channels: int, index: int, count: int, bn_momentum: float = 0.05):
        super().__init__()
        self.reduce = nn.Conv2d(channels * count, channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels, momentum=bn_momentum)
        weights = self_leaning_weights(index, count)
        with torch.no_grad():
            blocks = [torch.eye(channels) * weights[u] for u in range(count)]
            self.reduce.weight.copy_(torch.cat(blocks, dim=1)[:, :, None, None])

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:  # [T, B, C, H, W] -> [B, C, H, W]
        concatenated = torch.cat(list(stacked), dim=1)
        return torch.relu(self.norm(self.reduce(concatenated)))


@dataclass(frozen=True)
class NDDROptions(FusionOptions):
    bn_momentum: float = field(
        default=0.05, metadata={"help": "BatchNorm momentum of the NDDR layers (references: 0.05)"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.bn_momentum <= 1.0:
            raise ValueError(f"bn_momentum must be in (0, 1], got {self.bn_momentum}")


@register_method("nddr_cnn")
class NDDRCNN(FusedTaskEncoders):
    Options = NDDROptions
    paper = (
        "Gao et al., NDDR-CNN: Layerwise Feature Fusing in Multi-Task CNNs by Neural "
        "Discriminative Dimensionality Reduction, CVPR 2019"
    )

    def build_network(self, parts: ModelParts, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        momentum = self.options.bn_momentum
        return self.with_fusion_lr(
            TaskEncodersNet(
                parts, tasks, fusion=lambda stage, c, i, n: NDDRLayer(c, i, n, momentum)
            )
        )
