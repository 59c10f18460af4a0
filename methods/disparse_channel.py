"""``disparse_channel``: DiSparse's rule at channel level (Sun et al., CVPR 2022), on the trained
dense model, then fine-tuning.

Each task t scores the channels of the shared encoder and of its own head on its own loss: the
sum of |g_t * w| over the weights a channel spans, g_t summed over ``scoring_batches`` batches. A
shared channel is removed only when every task ranks it prunable (the union of the per-task
keeps), a task's own channel by that task's ranking; the per-task keep ratio is solved for the
requested sparsity by bisection, as ``disparse_static`` solves it for weights.

Departs from the authors' code (SHI-Labs/DiSparse-Multitask-Model-Compression, whose
``prune_utils.py`` prunes weights, not channels): the paper has no channel variant, so this is
our transfer of its rule. Each task keeps the same fraction of every group (layer-uniform per
task); the authors' weight-level code ranks each task's scores over the whole network (a global
ranking per task), which this does not do."""

from __future__ import annotations

from methods.channel_graph import ChannelGraph
from methods.channel_pruning import ChannelScoringOptions, PruneChannels
from methods.channel_selection import Removal, union_removal
from methods.context import PruneContext
from methods.networks.base import SHARED
from methods.registry import register_method
from methods.scoring import connection_sensitivity


@register_method("disparse_channel")
class DiSparseChannel(PruneChannels):
    Options = ChannelScoringOptions
    paper = "Sun et al., DiSparse, CVPR 2022 (its rule applied to channels)"

    def select(self, ctx: PruneContext, graph: ChannelGraph) -> Removal:
        task_scores = {}
        for task in ctx.tasks:
            saliency = connection_sensitivity(ctx, self.options.scoring_batches, task.name)
            task_scores[task.name] = {
                g.name: g.channel_scores(saliency)
                for g in graph.groups
                if g.owner in (SHARED, task.name)
            }
        return union_removal(graph, task_scores, ctx.sparsity, self.options.round_to)
