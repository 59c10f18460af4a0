"""``nddr_cnn``: Neural Discriminative Dimensionality Reduction (Gao et al., CVPR 2019).

One encoder per task; after every stage each task's next input is ReLU(BN(conv1x1(concat of all
tasks' features))), the 1x1 conv initialised as the paper's diagonal blocks: 0.9 * identity on the
task's own channels and 0.1 * identity split over the other tasks.
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


class NddrLayer(nn.Module):
    def __init__(self, channels: int, index: int, count: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels * count, channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        weights = self_leaning_weights(index, count)
        with torch.no_grad():
            blocks = [torch.eye(channels) * weights[u] for u in range(count)]
            self.reduce.weight.copy_(torch.cat(blocks, dim=1)[:, :, None, None])

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:  # [T, B, C, H, W] -> [B, C, H, W]
        concatenated = torch.cat(list(stacked), dim=1)
        return torch.relu(self.norm(self.reduce(concatenated)))


@register_method("nddr_cnn")
class NddrCnn(Architecture):
    Hparams = NoHparams
    paper = (
        "Gao et al., NDDR-CNN: Layerwise Feature Fusing in Multi-Task CNNs by Neural "
        "Discriminative Dimensionality Reduction, CVPR 2019"
    )

    def build_network(self, backbone: Backbone, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        return TaskEncodersNet(
            backbone, tasks, fusion=lambda stage, channels, i, n: NddrLayer(channels, i, n)
        )
