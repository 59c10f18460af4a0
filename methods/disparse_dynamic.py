"""``disparse_dynamic``: DiSparse dynamic sparse training (Sun et al., CVPR 2022).

As RigL (ERK layout, drop the smallest-|w| active weights, cosine-decayed update fraction) but
the grow step is disentangled: each task proposes the inactive weights with the largest gradient
of its own loss, on the shared encoder and its own head, and the union of the proposals grows.
To keep each layer's density constant the proposals are sized so the union holds exactly as many
weights as were dropped: a weight's grow priority is its best rank over the tasks, so the n
weights grown are the union of every task's top-m for the m that yields n.
"""

from __future__ import annotations

import torch

from methods.dynamic import DynamicSparseMethod
from methods.lifecycle import TrainingState
from methods.masks import prunable_parameters
from methods.registry import register_method
from methods.scoring import multitask_loss
from methods.targeting import task_scope


def union_priority(task_gradients: list[torch.Tensor], inactive: torch.Tensor) -> torch.Tensor:
    """Grow priority from per-task proposals: minus the best rank a weight reaches among the
    inactive weights of any task (rank 0 = that task's largest |gradient|). Taking the top n
    of this is the union of the tasks' top-m lists; a fraction below one breaks ties by the
    largest normalised gradient."""
    flat_inactive = inactive.flatten()
    best_rank = torch.full(flat_inactive.shape, float(flat_inactive.numel()))
    best_rank = best_rank.to(inactive.device)
    tie_break = torch.zeros_like(best_rank)
    for gradient in task_gradients:
        magnitude = torch.where(flat_inactive, gradient.abs().flatten().to(best_rank.dtype), -1.0)
        order = torch.argsort(magnitude, descending=True, stable=True)
        rank = torch.empty_like(best_rank)
        rank[order] = torch.arange(len(order), dtype=rank.dtype, device=rank.device)
        best_rank = torch.minimum(best_rank, rank)
        tie_break = torch.maximum(
            tie_break, magnitude.clamp(min=0) / magnitude.max().clamp(min=1e-30)
        )
    return (-best_rank + 0.5 * tie_break).view_as(inactive)


def task_gradients(state: TrainingState) -> dict[str, dict[str, torch.Tensor]]:
    """Gradient of each task's own loss on the current batch, over that task's scope."""
    ctx = state.ctx
    params = prunable_parameters(ctx.model)
    owners = state.masks.owners
    result = {}
    for task in ctx.tasks:
        scope = task_scope(owners, task.name)
        loss = multitask_loss(ctx, state.batch, task=task.name)
        grads = torch.autograd.grad(loss, [params[n] for n in scope], allow_unused=True)
        result[task.name] = {
            n: g.detach() if g is not None else torch.zeros_like(params[n])
            for n, g in zip(scope, grads, strict=True)
        }
    return result


@register_method("disparse_dynamic")
class DiSparseDynamic(DynamicSparseMethod):
    paper = (
        "Sun et al., DiSparse: Disentangled Sparsification for Multitask Model Compression, "
        "CVPR 2022"
    )

    def grow_scores(self, state: TrainingState, inactive) -> dict[str, torch.Tensor]:
        per_task = task_gradients(state)
        return {
            name: union_priority([g[name] for g in per_task.values() if name in g], mask)
            for name, mask in inactive.items()
        }
