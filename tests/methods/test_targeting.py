"""Merging per-task masks: union rule and exact overall sparsity for every budget."""

from __future__ import annotations

import pytest
import torch

from methods.budgets import BUDGETS
from methods.targeting import merge_task_scores, task_scope, union_of_task_masks

OWNERS = {"enc.0": "shared", "enc.1": "shared", "a.0": "a", "b.0": "b"}
SHAPES = {
    "enc.0": (32, 3, 3, 3),
    "enc.1": (64, 32, 3, 3),
    "a.0": (7, 64, 1, 1),
    "b.0": (3, 64, 1, 1),
}


def task_scores(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        task: {n: torch.rand(SHAPES[n], generator=g) for n in task_scope(OWNERS, task)}
        for task in ("a", "b")
    }


def test_union_keeps_a_shared_weight_if_any_task_keeps_it():
    ta = {"enc.0": torch.tensor([True, False, False]), "a.0": torch.tensor([True, False])}
    tb = {"enc.0": torch.tensor([False, True, False]), "b.0": torch.tensor([False, True])}
    owners = {"enc.0": "shared", "a.0": "a", "b.0": "b"}
    merged = union_of_task_masks({"a": ta, "b": tb}, owners)
    assert merged["enc.0"].tolist() == [True, True, False]
    assert merged["a.0"].tolist() == [True, False]
    assert merged["b.0"].tolist() == [False, True]


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("sparsity", [0.5, 0.7, 0.9, 0.98])
def test_merged_masks_hit_the_target_within_a_tenth_of_a_point(budget, sparsity):
    masks, keep_ratio = merge_task_scores(task_scores(), OWNERS, sparsity, budget)
    assert abs(masks.sparsity() - sparsity) < 0.001
    assert 0.0 <= keep_ratio <= 1.0


def test_target_reached_when_tasks_agree_on_shared_weights_and_starve_their_heads():
    """Both tasks rank every shared weight above their own head (10 shared, heads of 14 and 16),
    so at a per-task keep ratio of 1 - s = 0.5 their union keeps 12 + 13 - 10 = 15 of 40 weights:
    reaching 20 needs a ratio above 1 - s (0.6 keeps 14 + 16 - 10)."""
    owners = {"enc": "shared", "a": "a", "b": "b"}
    heads = {"a": 14, "b": 16}
    scores = {
        task: {"enc": torch.full((10,), 2.0), task: torch.rand(size) * 0.5}
        for task, size in heads.items()
    }
    masks, ratio = merge_task_scores(scores, owners, 0.5, "global")
    assert masks.num_kept() == 20  # exactly half of the 40 weights
    assert ratio > 0.5
    assert bool(masks.masks["enc"].all())  # the weights every task ranks first survive


def test_merged_masks_are_exactly_the_union_of_each_tasks_top_k():
    scores = task_scores(1)
    masks, ratio = merge_task_scores(scores, OWNERS, 0.8, "global")
    expected = {n: torch.zeros(SHAPES[n], dtype=torch.bool) for n in OWNERS}
    for task_score in scores.values():
        flat = torch.cat([s.flatten() for s in task_score.values()])
        threshold = torch.topk(flat, round(ratio * flat.numel())).values.min()
        for name, score in task_score.items():
            expected[name] |= score >= threshold
    for name in OWNERS:
        assert torch.equal(masks.masks[name], expected[name])
