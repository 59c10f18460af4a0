"""Exact sparsity targeting when per-task masks are merged.

DiSparse-style methods select weights per task and keep a shared weight if any task keeps it.
The merged mask's size depends on how much the tasks agree, so the per-task keep ratio that hits a
requested overall sparsity is not known in advance: we solve for it by bisection over [0, 1] (no
hand-tuned ratios). Raising
one task's keep count adds at most one weight to the union, so the achievable sparsities are
spaced by about one weight and bisection lands within that of the target.
"""

from __future__ import annotations

import torch

from methods.budgets import masks_from_scores
from methods.masks import MaskSet
from methods.networks.base import SHARED


def union_of_task_masks(
    task_masks: dict[str, dict[str, torch.Tensor]], owners: dict[str, str]
) -> dict[str, torch.Tensor]:
    """Shared tensors: kept where any task keeps them. A task's own tensors: that task's mask."""
    merged: dict[str, torch.Tensor] = {}
    for name, owner in owners.items():
        if owner == SHARED:
            votes = [masks[name] for masks in task_masks.values() if name in masks]
            merged[name] = torch.stack(votes).any(dim=0)
        else:
            merged[name] = task_masks[owner][name]
    return merged


def task_scope(owners: dict[str, str], task: str) -> list[str]:
    """Tensors a task scores: the shared ones and its own head."""
    return [name for name, owner in owners.items() if owner in (SHARED, task)]


def merge_task_scores(
    task_scores: dict[str, dict[str, torch.Tensor]],
    owners: dict[str, str],
    sparsity: float,
    budget: str,
    iterations: int = 60,
    tolerance: float = 1e-4,
) -> tuple[MaskSet, float]:
    """Per-task top-k under ``budget``, merged by union, hitting ``sparsity`` overall.

    ``task_scores[t]`` covers ``task_scope(owners, t)``. Returns the merged masks and the per-task
    keep ratio that produced them. Bisection stops within ``tolerance`` (0.01 percentage
    points by default, ten times tighter than the benchmark's promise) or half a weight.
    """
    sizes: dict[str, int] = {}
    for scores in task_scores.values():
        sizes.update({name: s.numel() for name, s in scores.items()})
    unscored = sorted(set(owners) - set(sizes))
    if unscored:
        raise ValueError(f"no task scored these tensors: {', '.join(unscored)}")
    total = sum(sizes.values())

    def merged_at(keep_ratio: float):
        per_task = {
            task: masks_from_scores(scores, 1.0 - keep_ratio, budget)
            for task, scores in task_scores.items()
        }
        merged = union_of_task_masks(per_task, owners)
        kept = sum(int(m.sum()) for m in merged.values())
        return (merged, per_task), 1.0 - kept / total

    # Each task ranks only its own scope, so at a keep ratio of 1 - s the union can keep fewer
    # than 1 - s of all weights (tasks that agree on shared weights and starve their heads):
    # search the whole range. The union keeps more as the ratio grows (monotone).
    low, high = 0.0, 1.0
    best_masks, best_sparsity = merged_at(high)
    best_ratio = high
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        masks, achieved = merged_at(mid)
        if abs(achieved - sparsity) < abs(best_sparsity - sparsity):
            best_masks, best_sparsity, best_ratio = masks, achieved, mid
        if achieved > sparsity:
            low = mid
        else:
            high = mid
        if high - low < 1e-9 or abs(best_sparsity - sparsity) <= max(0.5 / total, tolerance):
            break  # within half a weight (nothing closer exists) or within the tolerance
    merged, per_task = best_masks
    return MaskSet(merged, owners, task_masks=per_task), best_ratio
