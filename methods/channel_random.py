"""``channel_random``: remove random channels from the trained dense model, then fine-tune (the
control of the structured methods: the same layer-uniform fractions, channels drawn i.i.d.
U(0, 1) from the run's seeded generator)."""

from __future__ import annotations

import torch

from methods.channel_graph import ChannelGraph
from methods.channel_pruning import PruneChannels, RandomChannelOptions
from methods.context import PruneContext
from methods.registry import register_method


@register_method("channel_random")
class ChannelRandom(PruneChannels):
    Options = RandomChannelOptions
    paper = "random channels: the control of structured pruning"

    def channel_scores(self, ctx: PruneContext, graph: ChannelGraph) -> dict[str, torch.Tensor]:
        return {g.name: torch.rand(g.size, generator=ctx.generator) for g in graph.groups}
