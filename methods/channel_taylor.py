"""``channel_taylor``: remove the channels whose first-order Taylor estimate of the loss change
is smallest, then fine-tune (Molchanov et al. 2019).

Score of a channel: the sum of |g * w| over every weight it spans in its group, with g the
gradient of the weighted sum of task losses summed over ``scoring_batches`` training batches
(Torch-Pruning's group Taylor importance, ``GroupTaylorImportance``).

Departs from the paper and its code (NVlabs/Taylor_pruning): they score each channel by the
first-order Taylor term of its BatchNorm gate, (g_gamma * gamma)^2 (or of the conv weights),
rank channels globally across layers and prune iteratively, a few channels every few minibatches
with fine-tuning between; this is Torch-Pruning's one-shot score over the whole group with every
group losing the same fraction of its channels (layer-uniform), then one fine-tune. Its ranking
of channels need not agree with the BN-gate score's: read it as "group Taylor, one shot", not as
Molchanov et al.'s procedure."""

from __future__ import annotations

import torch

from methods.channel_graph import ChannelGraph
from methods.channel_pruning import ChannelScoringOptions, PruneChannels
from methods.context import PruneContext
from methods.registry import register_method
from methods.scoring import connection_sensitivity


@register_method("channel_taylor")
class ChannelTaylor(PruneChannels):
    Options = ChannelScoringOptions
    paper = "Molchanov et al., Importance Estimation for Neural Network Pruning, CVPR 2019"

    def channel_scores(self, ctx: PruneContext, graph: ChannelGraph) -> dict[str, torch.Tensor]:
        saliency = connection_sensitivity(ctx, self.options.scoring_batches)
        return {g.name: g.channel_scores(saliency) for g in graph.groups}
