"""``disparse_static``: DiSparse at initialisation (Sun et al., CVPR 2022).

Score per task t: |g_t * w| with g_t the gradient of task t's loss alone, on the shared encoder and
t's own head, normalised to sum 1 over that scope. Each task keeps its top-k; a shared weight
survives if any task keeps it (pruned only when every task agrees). The per-task k is solved so the
merged mask hits the requested sparsity exactly (``methods.targeting``).

Normalisation does not change a task's own top-k; it is kept because it makes the task scores
comparable when they are inspected or merged by rank. The helpers here are shared by the whole
DiSparse family.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from methods.context import PruneContext
from methods.hparams import ScoringHparams
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.registry import Method, MethodKind, register_method
from methods.scoring import connection_sensitivity
from methods.targeting import merge_task_scores, task_scope

TaskScore = Callable[[PruneContext, str], dict[str, torch.Tensor]]


def task_connection_sensitivity(num_batches: int) -> TaskScore:
    """|g_t * w| of task t's own loss, summed over ``num_batches`` scoring batches."""
    return lambda ctx, task: connection_sensitivity(ctx, num_batches, task=task)


def per_task_scores(ctx: PruneContext, score: TaskScore) -> dict[str, dict[str, torch.Tensor]]:
    """For each task: its score on the shared tensors and its own head, normalised to sum 1."""
    owners = owners_of(ctx.model, prunable_parameters(ctx.model))
    result = {}
    for task in ctx.tasks:
        scores = score(ctx, task.name)
        scope = task_scope(owners, task.name)
        norm = sum(scores[n].sum() for n in scope).clamp(min=1e-30)
        result[task.name] = {n: scores[n] / norm for n in scope}
    return result


def per_task_saliency(ctx: PruneContext, num_batches: int) -> dict[str, dict[str, torch.Tensor]]:
    return per_task_scores(ctx, task_connection_sensitivity(num_batches))


def disentangled_masks(ctx: PruneContext, score: TaskScore, budget: str) -> MaskSet:
    """Per-task top-k of ``score``, merged by union on shared tensors, at the exact sparsity."""
    owners = owners_of(ctx.model, prunable_parameters(ctx.model))
    masks, _ = merge_task_scores(per_task_scores(ctx, score), owners, ctx.sparsity, budget)
    return masks


@register_method("disparse_static")
class DiSparseStatic(Method):
    kind = MethodKind.PRUNE_AT_INIT
    Hparams = ScoringHparams
    paper = (
        "Sun et al., DiSparse: Disentangled Sparsification for Multitask Model Compression, "
        "CVPR 2022"
    )

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        score = task_connection_sensitivity(self.hparams.scoring_batches)
        return disentangled_masks(ctx, score, self.hparams.budget)
