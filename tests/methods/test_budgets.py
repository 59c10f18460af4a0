"""Layer budgets: exact keep counts, ERK against its closed form, top-k really keeps the top."""

from __future__ import annotations

import math

import pytest
import torch

from methods.budgets import BUDGETS, erk_densities, layer_keep_counts, masks_from_scores

SHAPES = {"a": (8, 3, 3, 3), "b": (16, 8, 3, 3), "c": (16, 16, 3, 3), "d": (10, 16)}


def random_scores(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(s, generator=g) for n, s in SHAPES.items()}


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.99])
def test_every_budget_keeps_exactly_the_requested_fraction(budget, sparsity):
    masks = masks_from_scores(random_scores(), sparsity, budget)
    total = sum(math.prod(s) for s in SHAPES.values())
    assert sum(int(m.sum()) for m in masks.values()) == round((1 - sparsity) * total)


def test_global_budget_is_one_threshold():
    scores = random_scores()
    masks = masks_from_scores(scores, 0.7, "global")
    kept = torch.cat([scores[n][masks[n]] for n in scores])
    pruned = torch.cat([scores[n][~masks[n]] for n in scores])
    assert kept.min() > pruned.max()


def test_uniform_budget_prunes_each_layer_alike_and_keeps_its_top():
    scores = random_scores()
    masks = masks_from_scores(scores, 0.5, "uniform")
    for name, mask in masks.items():
        assert abs(mask.float().mean().item() - 0.5) <= 1 / mask.numel() + 1e-9
        assert scores[name][mask].min() > scores[name][~mask].max()


def test_erk_densities_match_the_closed_form():
    # no layer saturates at density 0.1: density_l = eps * sum(shape)/prod(shape) with one eps
    density = 0.1
    out = erk_densities(SHAPES, density)
    sizes = {n: math.prod(s) for n, s in SHAPES.items()}
    eps = density * sum(sizes.values()) / sum(sum(s) for s in SHAPES.values())
    for name, shape in SHAPES.items():
        assert out[name] == pytest.approx(eps * sum(shape) / sizes[name])
    assert sum(out[n] * sizes[n] for n in SHAPES) == pytest.approx(density * sum(sizes.values()))


def test_erk_saturated_layers_are_dense_and_the_rest_rescaled():
    shapes = {"tiny": (2, 1, 1, 1), "big": (64, 64, 3, 3)}
    out = erk_densities(shapes, 0.5)
    assert out["tiny"] == 1.0
    big = 64 * 64 * 9
    assert out["big"] == pytest.approx((0.5 * (big + 2) - 2) / big)


def test_layer_counts_sum_to_target_and_respect_layer_sizes():
    counts = layer_keep_counts(SHAPES, 0.9, "erk")
    total = sum(math.prod(s) for s in SHAPES.values())
    assert sum(counts.values()) == round(0.1 * total)
    assert all(0 <= counts[n] <= math.prod(SHAPES[n]) for n in SHAPES)


def test_bad_budget_and_sparsity_are_rejected():
    with pytest.raises(ValueError, match="unknown layer budget 'layerwise'"):
        masks_from_scores(random_scores(), 0.5, "layerwise")
    with pytest.raises(ValueError, match="sparsity must be in"):
        masks_from_scores(random_scores(), 1.5, "global")


def test_erk_power_softens_the_layer_ratios_by_hand():
    shapes = {"a": (4, 2), "b": (8, 8)}  # raw ratios (4+2)/8 = 0.75 and 16/64 = 0.25
    densities = erk_densities(shapes, 0.3, power=0.5)
    ratio = densities["a"] / densities["b"]
    assert ratio == pytest.approx((0.75 / 0.25) ** 0.5)
    total = 8 * densities["a"] + 64 * densities["b"]
    assert total == pytest.approx(0.3 * 72)


@pytest.mark.parametrize("budget", ["erk", "global"])
def test_dense_layers_stay_dense_and_the_target_stays_exact(budget):
    scores = {"first": torch.rand(16, 3, 3, 3), "rest": torch.rand(64, 16, 3, 3)}
    masks = masks_from_scores(scores, 0.9, budget, dense_layers=["first"])
    assert bool(masks["first"].all())
    kept = sum(int(m.sum()) for m in masks.values())
    assert kept == round(0.1 * sum(s.numel() for s in scores.values()))
    with pytest.raises(ValueError, match="erk or global budget"):
        masks_from_scores(scores, 0.9, "uniform", dense_layers=["first"])


def test_dynamic_methods_can_keep_the_first_layer_dense(tiny_model, context_factory):
    from methods.registry import build_method

    method = build_method("rigl", {"dense_first_layer": True, "erk_power": 0.9})
    masks = method.make_masks(context_factory(tiny_model, 0.8))
    first = next(iter(masks.masks))
    assert bool(masks.masks[first].all()) and abs(masks.sparsity() - 0.8) < 0.001
