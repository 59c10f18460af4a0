"""MTAN's task attention (Liu et al., End-to-End Multi-Task Learning with Attention, CVPR 2019),
wired as the authors' SegNet and ResNet versions (lorenmt/mtan) wire it, on any model's encoder
stages.

Per stage s, split the shared stage into its body and its last block: u_s = body(input),
p_s = last(u_s). Task t's mask reads u_s (the feature *before* the last block), concatenated with
the task's carried feature from stage s-1 when s > 0, and is applied to the stage output:
a_s = gate_s(u_s [, c_s]) * p_s. The carried feature c_{s+1} = pool(link_s(a_s)), where link_s is
one conv3x3-BN-ReLU block mapping C_s -> C_{s+1} that all tasks share, and pool max-pools to
stage s+1's resolution (the references' 2x2 max-pool where the resolution halves). The last
stage's attended feature goes to the task's head. The gate is conv1x1-BN-ReLU-conv1x1-BN-sigmoid
with hidden width C_s / ``gate_reduction`` (1 in the SegNet version, 4 in the ResNet one).

Deviation: the ResNet reference's link is a bottleneck residual block; here it is the SegNet
version's conv3x3-BN-ReLU for every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F

from core.tasks import TaskSpec
from methods.networks.base import SHARED, MultiTaskNet, owned_by
from methods.networks.parts import ModelParts, cut_stages


def input_channels(block: nn.Module) -> int:
    """Channels ``block`` reads: those of its first convolution, linear layer or layer norm (a
    transformer block's first module)."""
    for module in block.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
        if isinstance(module, nn.Linear):
            return module.in_features
        if isinstance(module, nn.LayerNorm):
            return module.normalized_shape[-1]
    raise ValueError(
        f"{type(block).__name__} has no convolution, linear layer or layer norm to read its "
        "input width from"
    )


def attention_gate(in_channels: int, channels: int, reduction: int) -> nn.Sequential:
    hidden = max(1, channels // reduction)
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 1, bias=False),
        nn.BatchNorm2d(hidden),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.Sigmoid(),
    )


def link_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class AttentionNet(MultiTaskNet):
    def __init__(self, parts: ModelParts, tasks: Sequence[TaskSpec], gate_reduction: int = 4):
        heads = {t.name: parts.make_head(parts.out_channels, t.channels) for t in tasks}
        super().__init__(parts.make_encoder(), heads)
        self.stage_ends = parts.stage_ends
        self.split_stage = parts.split_stage
        channels = parts.stage_channels
        stages = cut_stages(self.encoder, self.stage_ends)
        before = [input_channels(self.split_stage(stage)[1]) for stage in stages]
        self.gates = nn.ModuleDict(
            {
                t.name: nn.ModuleList(
                    attention_gate(before[s] + (c if s else 0), c, gate_reduction)
                    for s, c in enumerate(channels)
                )
                for t in tasks
            }
        )
        self.links = nn.ModuleList(link_block(a, b) for a, b in pairwise(channels))

    def task_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.attend(x)[0]

    def attend(
        self, x: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
        """(each task's attended last-stage feature, each stage's masks per task)."""
        attended: dict[str, torch.Tensor] = {}
        masks = []
        shared = x
        for s, stage in enumerate(cut_stages(self.encoder, self.stage_ends)):
            body, last = self.split_stage(stage)
            before = body(shared)
            shared = last(before)
            stage_masks = {}
            for task, gates in self.gates.items():
                gate_input = before
                if s > 0:
                    linked = self.links[s - 1](attended[task])
                    carried = F.adaptive_max_pool2d(linked, before.shape[-2:])
                    gate_input = torch.cat([before, carried], dim=1)
                stage_masks[task] = gates[s](gate_input)
                attended[task] = stage_masks[task] * shared
            masks.append(stage_masks)
        return attended, masks

    def parameter_owners(self) -> dict[str, str]:
        owners = super().parameter_owners()
        for task, gates in self.gates.items():
            owners.update(owned_by(f"gates.{task}", gates, task))
        owners.update(owned_by("links", self.links, SHARED))
        return owners
