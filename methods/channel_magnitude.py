"""``channel_magnitude``: remove the channels of smallest group L2 norm from the trained dense
model, then fine-tune (the structured counterpart of ``magnitude``; Li et al. 2017 score one
layer's filters, Torch-Pruning's group norm sums every weight a channel spans).

Score of a channel: the L2 norm of all conv/linear weights it spans in its group (its filters,
and the next layers' input slices).

Departs from Torch-Pruning's default ``GroupMagnitudeImportance``, which also counts the
BatchNorm scale gamma of the channel in the group norm: here only conv/linear weights count.
Li et al. 2017 score one layer's filters by their L1 norm; the group L2 norm and the
layer-uniform allocation (every group loses the same fraction) are Torch-Pruning's."""

from __future__ import annotations

import torch

from methods.channel_graph import ChannelGraph
from methods.channel_pruning import PruneChannels, ScoredChannelOptions
from methods.context import PruneContext
from methods.registry import register_method
from methods.scoring import magnitude_scores


@register_method("channel_magnitude")
class ChannelMagnitude(PruneChannels):
    Options = ScoredChannelOptions
    paper = "Li et al., Pruning Filters for Efficient ConvNets, ICLR 2017 (group L2 norm)"

    def channel_scores(self, ctx: PruneContext, graph: ChannelGraph) -> dict[str, torch.Tensor]:
        squares = {n: s.square() for n, s in magnitude_scores(ctx.model).items()}
        return {g.name: g.channel_scores(squares).sqrt() for g in graph.groups}
