"""IMP's round schedule and LTH's rewinding."""

from __future__ import annotations

import pytest
import torch

from methods.masks import prunable_parameters
from methods.registry import build_method
from methods.schedules import round_sparsities


def recording(ctx):
    kept = []
    original = ctx.train

    def train(masks, steps, lr=None):
        kept.append(masks.num_kept())
        original(masks, steps, lr)

    ctx.train = train
    return kept


@pytest.mark.parametrize("options,expected_rounds", [({"rounds": 3}, 3), ({"fraction": 0.5}, 4)])
def test_imp_removes_the_stated_fraction_each_round_and_ends_exact(
    options, expected_rounds, tiny_model, context_factory
):
    target = 0.9
    ctx = context_factory(tiny_model, target)
    kept = recording(ctx)
    masks = build_method("imp", {"round_steps": 1, **options}).make_masks(ctx)
    total = masks.num_total()
    kept.append(masks.num_kept())
    assert len(kept) == expected_rounds
    fraction = options.get("fraction", 1 - (1 - target) ** (1 / 3))
    previous = total
    for count in kept[:-1]:
        assert abs(count - (1 - fraction) * previous) <= 1  # fraction of the remaining, +-1 weight
        previous = count
    assert kept[-1] == round((1 - target) * total)


def test_round_schedule_values():
    assert round_sparsities(0.75, 2) == pytest.approx([0.5, 0.75])
    assert round_sparsities(0.9, 3, fraction=0.5) == pytest.approx([0.5, 0.75, 0.875, 0.9])
    with pytest.raises(ValueError, match="fraction must be in"):
        round_sparsities(0.9, 3, fraction=1.5)


def test_lth_rewinds_survivors_to_iteration_k_bit_for_bit(tiny_model, context_factory):
    ctx = context_factory(tiny_model, 0.8)
    rewind = {k: v.clone() for k, v in ctx.snapshot(0).items()}
    with torch.no_grad():  # stand-in for the trained dense model: far from the snapshot
        for p in tiny_model.parameters():
            p.add_(torch.randn_like(p))
    masks = build_method("lth", {"rounds": 2, "round_steps": 2, "rewind_step": 0}).make_masks(ctx)
    state = tiny_model.state_dict()
    for name in prunable_parameters(tiny_model):
        mask = masks.masks[name]
        assert torch.equal(state[name][mask], rewind[name][mask])
        assert torch.all(state[name][~mask] == 0)
    for name, value in state.items():
        if name not in masks.masks:
            assert torch.equal(value, rewind[name])
    assert abs(masks.sparsity() - 0.8) < 1e-3


def test_lth_needs_a_snapshot_to_rewind_to(tiny_model, context_factory):
    ctx = context_factory(tiny_model, 0.8)
    ctx.snapshot_steps = ()
    with pytest.raises(ValueError, match="lth needs protocol.snapshot_steps"):
        build_method("lth", {}).make_masks(ctx)
