"""Networks with one encoder per task, optionally fused after every stage.

``single_task`` uses no fusion; ``cross_stitch`` and ``nddr_cnn`` fuse with their own units. Every
fusion module belongs to one task: it computes that task's next input from all tasks' features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from core.tasks import TaskSpec
from methods.networks.base import MultiTaskNet, owned_by
from methods.networks.parts import ModelParts, cut_stages

# (stage index, channels, task index, task count) -> module mapping [T, B, C, H, W] -> [B, C, H, W]
FusionFactory = Callable[[int, int, int, int], nn.Module]
SELF_WEIGHT = 0.9


def self_leaning_weights(index: int, count: int) -> torch.Tensor:
    """Initial mixing weights of task ``index`` over ``count`` tasks, as cross-stitch and NDDR
    initialise them: 0.9 on its own features, the other 0.1 split evenly over the other tasks
    (1.0 when it is alone)."""
    if count == 1:
        return torch.ones(1)
    weights = torch.full((count,), (1.0 - SELF_WEIGHT) / (count - 1))
    weights[index] = SELF_WEIGHT
    return weights


class TaskEncodersNet(MultiTaskNet):
    def __init__(
        self, parts: ModelParts, tasks: Sequence[TaskSpec], fusion: FusionFactory | None = None
    ):
        heads = {t.name: parts.make_head(parts.out_channels, t.channels) for t in tasks}
        super().__init__(None, heads)
        self.stage_ends = parts.stage_ends
        self.encoders = nn.ModuleDict({t.name: parts.make_encoder() for t in tasks})
        self.fusions = None
        if fusion is not None:
            count = len(tasks)
            self.fusions = nn.ModuleList(
                nn.ModuleDict({t.name: fusion(s, c, i, count) for i, t in enumerate(tasks)})
                for s, c in enumerate(parts.stage_channels)
            )

    def task_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        stages = {t: cut_stages(enc, self.stage_ends) for t, enc in self.encoders.items()}
        features = {t: x for t in self.encoders}
        for s in range(len(self.stage_ends)):
            features = {t: stages[t][s](features[t]) for t in self.encoders}
            if self.fusions is not None:
                stacked = torch.stack([features[t] for t in self.encoders])
                features = {t: self.fusions[s][t](stacked) for t in self.encoders}
        return features

    def parameter_owners(self) -> dict[str, str]:
        owners = super().parameter_owners()
        for task, encoder in self.encoders.items():
            owners.update(owned_by(f"encoders.{task}", encoder, task))
        if self.fusions is not None:
            for s, per_task in enumerate(self.fusions):
                for task, module in per_task.items():
                    owners.update(owned_by(f"fusions.{s}.{task}", module, task))
        return owners
