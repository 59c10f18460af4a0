"""Disentangled selection, the core of the DiSparse family (Sun et al., CVPR 2022).

Each task scores the shared encoder and its own head on its own; the scores are normalised to
sum 1 over that scope; each task keeps its top-k; a shared weight survives if any task keeps it
(pruned only when every task agrees); the per-task k is solved so the merged mask hits the
requested sparsity (``methods.targeting``). Normalisation does not change a task's own top-k; it
makes the task scores comparable when they are inspected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from methods.context import PruneContext
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.targeting import merge_task_scores, task_scope

TaskScore = Callable[[PruneContext, str], dict[str, torch.Tensor]]


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


def disentangled_masks(ctx: PruneContext, score: TaskScore, budget: str) -> MaskSet:
    """Per-task top-k of ``score``, merged by union on shared tensors, at the exact sparsity."""
    owners = owners_of(ctx.model, prunable_parameters(ctx.model))
    masks, _ = merge_task_scores(per_task_scores(ctx, score), owners, ctx.sparsity, budget)
    return masks


class DisentangledSelection:
    """Mix into a method (before its kind base) that defines ``task_scores(ctx, task)``: its
    masks are the disentangled selection of those scores under its layer budget."""

    options: Any

    def task_scores(self, ctx: PruneContext, task: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        return disentangled_masks(ctx, self.task_scores, self.options.budget)
