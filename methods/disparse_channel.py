"""``disparse_channel``: DiSparse's rule at channel level (Sun et al., CVPR 2022), on the trained
dense model, then fine-tuning.

Each task t scores the channels of the shared encoder and of its own head on its own loss: the
sum of |g_t * w| over the weights a channel spans, g_t summed over ``scoring_batches`` batches. A
shared channel is removed only when every task ranks it prunable (the union of the per-task
keeps), a task's own channel by that task's ranking; the per-task keep ratio is solved for the
requested sparsity by bisection, as ``disparse_static`` solves it for weights.

Ranking (``ranking``): by default each task ranks all the channels it scores together, over the
whole network, as the authors' ``prune_utils.py`` ranks each task's weights over the backbone and
its head (SHI-Labs/DiSparse-Multitask-Model-Compression). ``layer`` keeps the same fraction of
every group for each task (the suite's earlier default).

Departs from the authors' code, which prunes weights, not channels (the paper has no channel
variant, so this is our transfer of its rule): channels of different layers span different
numbers of weights, so a channel is ranked by its mean score per weight (the per-weight score the
authors rank, averaged over the channel; a sum would favour the channels of wide layers), and
every group keeps at least one step of channels (a layer emptied of channels would cut the
network; the authors' weight masks may empty a layer)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.options import check_choice
from methods.channel_graph import ChannelGraph
from methods.channel_pruning import ChannelScoringOptions, PruneChannels
from methods.channel_selection import RANKINGS, Removal, union_removal
from methods.context import PruneContext
from methods.networks.base import SHARED
from methods.registry import register_method
from methods.scoring import connection_sensitivity


@dataclass(frozen=True)
class DiSparseChannelOptions(ChannelScoringOptions):
    ranking: str = field(
        default="network",
        metadata={
            "help": "network: each task ranks every channel it scores together, by mean score "
            "per weight (the authors rank each task's weights over the whole network); layer: "
            "each task keeps the same fraction of every layer"
        },
    )

    def __post_init__(self) -> None:
        check_choice("ranking", self.ranking, RANKINGS)
        super().__post_init__()


@register_method("disparse_channel")
class DiSparseChannel(PruneChannels):
    Options = DiSparseChannelOptions
    paper = "Sun et al., DiSparse, CVPR 2022 (its rule applied to channels)"

    def select(self, ctx: PruneContext, graph: ChannelGraph) -> Removal:
        task_scores = {}
        for task in ctx.tasks:
            saliency = connection_sensitivity(ctx, self.options.scoring_batches, task.name)
            per_channel = {n: torch.ones_like(s) for n, s in saliency.items()}
            task_scores[task.name] = {
                g.name: self._scale(g.channel_scores(saliency), g.channel_scores(per_channel))
                for g in graph.groups
                if g.owner in (SHARED, task.name)
            }
        return union_removal(
            graph, task_scores, ctx.sparsity, self.options.round_to, self.options.ranking
        )

    def _scale(self, sums: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Mean score per weight for a network-wide ranking; the sums within a layer."""
        return sums / weights.clamp(min=1) if self.options.ranking == "network" else sums
