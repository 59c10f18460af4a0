"""``mtan``: Multi-Task Attention Network (Liu et al., CVPR 2019): a shared encoder with a soft
attention module per task and stage (see ``methods/networks/attention.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from core.tasks import TaskSpec
from methods.lifecycle import Architecture
from methods.networks import ModelParts, MultiTaskNet
from methods.networks.attention import AttentionNet
from methods.registry import register_method


@dataclass(frozen=True)
class MTANOptions:
    gate_reduction: int = field(
        default=4,
        metadata={
            "help": "attention gate's hidden width is C / this: 4 as in the authors' ResNet "
            "MTAN, 1 as in their SegNet MTAN"
        },
    )

    def __post_init__(self) -> None:
        if self.gate_reduction < 1:
            raise ValueError(f"gate_reduction must be >= 1, got {self.gate_reduction}")


@register_method("mtan")
class MTAN(Architecture):
    Options = MTANOptions
    paper = "Liu et al., End-to-End Multi-Task Learning with Attention, CVPR 2019"
    reads_inside_stages = True

    def build_network(self, parts: ModelParts, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        return AttentionNet(parts, tasks, self.options.gate_reduction)
