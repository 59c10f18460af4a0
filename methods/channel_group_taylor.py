"""``channel_group_taylor``: Torch-Pruning's one-shot group Taylor criterion on channels: remove
the channels whose first-order Taylor estimate of the loss change is smallest, every group losing
the same fraction, then fine-tune. Named for what it is, not for Molchanov et al. (2019).

Score of a channel: the sum of |g * w| over every weight it spans in its group, with g the
gradient of the weighted sum of task losses summed over ``scoring_batches`` training batches
(Torch-Pruning's ``GroupTaylorImportance``, VainF/Torch-Pruning).

Where it departs from Molchanov et al. 2019 and their code (NVlabs/Taylor_pruning): they score
each channel by the first-order Taylor term of its BatchNorm gate, (g_gamma * gamma)^2, rank
channels globally across layers and prune iteratively, a few channels every few minibatches with
fine-tuning between; this scores the whole group once, prunes layer-uniformly and fine-tunes once.
Its ranking of channels need not agree with the BN-gate score's (issue 27 measured Spearman
0.28-0.71). It was called ``channel_taylor`` before; that procedure is not implemented."""

from __future__ import annotations

import torch

from methods.channel_graph import ChannelGraph
from methods.channel_pruning import ChannelScoringOptions, PruneChannels
from methods.context import PruneContext
from methods.registry import register_method
from methods.scoring import connection_sensitivity


@register_method("channel_group_taylor")
class ChannelGroupTaylor(PruneChannels):
    Options = ChannelScoringOptions
    paper = "Torch-Pruning group Taylor (after Molchanov et al., CVPR 2019; not their procedure)"

    def channel_scores(self, ctx: PruneContext, graph: ChannelGraph) -> dict[str, torch.Tensor]:
        saliency = connection_sensitivity(ctx, self.options.scoring_batches)
        return {g.name: g.channel_scores(saliency) for g in graph.groups}
