"""``disparse_static``: DiSparse at initialisation (Sun et al., CVPR 2022).

Score per task t: |g_t * w| with g_t the gradient of task t's loss alone, on the shared encoder and
t's own head, normalised to sum 1 over that scope. Each task keeps its top-k; a shared weight
survives if any task keeps it (pruned only when every task agrees). The per-task k is solved so the
merged mask hits the requested sparsity exactly (``methods.targeting``).

Normalisation does not change a task's own top-k; it is kept because it makes the task scores
comparable when they are inspected or merged by rank.
"""

from __future__ import annotations

import torch

from methods.context import PruneContext
from methods.hparams import ScoringHparams
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.registry import Method, MethodKind, register_method
from methods.scoring import connection_sensitivity
from methods.targeting import merge_task_scores, task_scope


def per_task_saliency(ctx: PruneContext, num_batches: int) -> dict[str, dict[str, torch.Tensor]]:
    """For each task: its normalised |g_t * w| on the shared tensors and its own head."""
    owners = owners_of(ctx.model, prunable_parameters(ctx.model))
    result = {}
    for task in ctx.tasks:
        scores = connection_sensitivity(ctx, num_batches, task=task.name)
        scope = task_scope(owners, task.name)
        norm = sum(scores[n].sum() for n in scope).clamp(min=1e-30)
        result[task.name] = {n: scores[n] / norm for n in scope}
    return result


@register_method("disparse_static")
class DiSparseStatic(Method):
    kind = MethodKind.PRUNE_AT_INIT
    Hparams = ScoringHparams
    paper = (
        "Sun et al., DiSparse: Disentangled Sparsification for Multitask Model Compression, "
        "CVPR 2022"
    )

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        owners = owners_of(ctx.model, prunable_parameters(ctx.model))
        task_scores = per_task_saliency(ctx, self.hparams.scoring_batches)
        masks, _ = merge_task_scores(task_scores, owners, ctx.sparsity, self.hparams.budget)
        return masks
