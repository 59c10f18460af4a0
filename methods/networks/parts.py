"""A model's building parts, so every architecture is assembled from the same code.

``dense`` and the compression methods use the hard-sharing network (one encoder, one head per
task); the dedicated multitask architectures build per-task encoders or attention modules from the
same encoder stages and heads, never from copies of encoder code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from core.tasks import TaskSpec
from methods.networks.base import MultiTaskNet


def cut_stages(encoder: nn.Sequential, ends: Sequence[int]) -> list[nn.Sequential]:
    """The encoder cut into stages (slices share the encoder's modules and parameters)."""
    starts = (0, *ends[:-1])
    return [encoder[a:b] for a, b in zip(starts, ends, strict=True)]


def split_last_module(stage: nn.Sequential) -> tuple[nn.Sequential, nn.Module]:
    """(the stage without its last block, its last block) when each module is one block."""
    return stage[:-1], stage[-1]


def split_last_residual_block(stage: nn.Sequential) -> tuple[nn.Sequential, nn.Module]:
    """Like ``split_last_module`` for stages that end with a ResNet layer (a sequence of
    residual blocks): the last block is that layer's last block."""
    layer = stage[-1]
    return nn.Sequential(*stage[:-1], *layer[:-1]), layer[-1]


@dataclass(frozen=True)
class ModelParts:
    """``make_encoder()`` gives a fresh encoder (an ``nn.Sequential``) whose slices
    ``[stage_ends[i-1]:stage_ends[i]]`` are the stages, each ending with ``stage_channels[i]``
    channels; ``make_head(c_in, c_out)`` a fresh task head; ``split_stage(stage)`` gives
    (the stage up to its last block, the last block), where MTAN reads its attention input."""

    make_encoder: Callable[[], nn.Sequential]
    stage_ends: tuple[int, ...]
    stage_channels: tuple[int, ...]
    make_head: Callable[[int, int], nn.Module]
    split_stage: Callable[[nn.Sequential], tuple[nn.Sequential, nn.Module]] = split_last_module

    @property
    def out_channels(self) -> int:
        return self.stage_channels[-1]

    def hard_sharing(self, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        heads = {t.name: self.make_head(self.out_channels, t.channels) for t in tasks}
        return MultiTaskNet(self.make_encoder(), heads)
