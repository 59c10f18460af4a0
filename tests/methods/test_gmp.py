"""Gradual magnitude pruning: the cubic schedule by hand, pruning at the right steps, pruned
weights staying pruned, and a run too short for the schedule still ending at the target."""

from __future__ import annotations

import pytest
import torch

from methods.lifecycle import TrainingState
from methods.masks import prunable_parameters
from methods.registry import build_method
from methods.schedules import cubic_sparsity


@pytest.mark.parametrize(
    "step,expected",
    [
        (0, 0.0),
        (10, 0.0),
        (30, 0.9 - 0.9 * 0.5**3),
        (40, 0.9 - 0.9 * 0.25**3),
        (50, 0.9),
        (70, 0.9),
    ],
)
def test_cubic_schedule_by_hand(step, expected):
    assert cubic_sparsity(step, 10, 50, 0.9) == pytest.approx(expected)


def test_gmp_prunes_on_its_schedule_and_never_revives(tiny_model, context_factory):
    ctx = context_factory(tiny_model, 0.8)
    method = build_method("gmp", {"begin": 0.2, "end": 0.6, "every": 3})
    masks = method.make_masks(ctx)
    assert masks.sparsity() == 0.0  # dense until the first pruning step
    optimizer = torch.optim.SGD(tiny_model.parameters(), lr=0.0)
    batch = next(ctx.batches(1))
    total = masks.num_total()
    history = []
    for step in range(20):  # first pruning step floor(0.2 * 20) = 4, last floor(0.6 * 20) = 12
        before = {n: m.clone() for n, m in masks.masks.items()}
        method.on_backward(TrainingState(ctx, masks, optimizer, batch, step, 20))
        masks.apply(tiny_model)
        history.append(masks.sparsity())
        for n, mask in masks.masks.items():
            assert not torch.any(mask & ~before[n]), "a pruned weight came back"
    changed = [s for s in range(1, 20) if history[s] != history[s - 1]]
    assert changed == [7, 10, 12]  # pruning steps 4, 7, 10, 12; at step 4 the schedule is still 0
    for step in changed:
        expected = cubic_sparsity(step, 4, 12, 0.8)
        assert abs(history[step] - expected) <= 1 / total
    assert abs(history[-1] - 0.8) <= 1 / total
    params = prunable_parameters(tiny_model)
    assert all(torch.all(params[n][~m] == 0) for n, m in masks.masks.items())


def test_gmp_finish_reaches_the_target_when_training_ends_early(tiny_model, context_factory):
    ctx = context_factory(tiny_model, 0.7)
    method = build_method("gmp", {})
    masks = method.make_masks(ctx)
    method.finish(ctx, masks)  # no training step at all
    assert abs(masks.sparsity() - 0.7) <= 1 / masks.num_total()
    params = prunable_parameters(tiny_model)
    assert all(torch.all(params[n][~m] == 0) for n, m in masks.masks.items())


def test_gmp_rejects_a_window_that_ends_before_it_begins():
    with pytest.raises(ValueError, match="begin <= end"):
        build_method("gmp", {"begin": 0.7, "end": 0.5})
