"""Sanity-check ablations (Frankle et al. 2021): masks, sweep expansion and the table."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_module

from benchmarks.reporting.sanity_table import render_sanity_table
from benchmarks.sweep.expand import expand_sweep
from methods.budgets import masks_from_scores
from methods.lifecycle import MethodKind
from methods.masks import MaskSet
from methods.registry import build_method, get_method, list_methods
from methods.sanity import shuffled_within_layers
from methods.scoring import random_scores
from tests.helpers import make_context


def test_shuffle_keeps_each_layers_count_and_moves_the_weights():
    masks = MaskSet(
        {"a": torch.arange(100) < 30, "b": torch.arange(12).view(3, 4) < 2},
        {"a": "shared", "b": "seg"},
    )
    shuffled = shuffled_within_layers(masks, torch.Generator().manual_seed(0))
    assert int(shuffled.masks["a"].sum()) == 30 and int(shuffled.masks["b"].sum()) == 2
    assert shuffled.masks["b"].shape == (3, 4)
    assert not torch.equal(shuffled.masks["a"], masks.masks["a"])
    again = shuffled_within_layers(masks, torch.Generator().manual_seed(0))
    assert all(torch.equal(again.masks[n], shuffled.masks[n]) for n in masks.masks)


def test_invert_keeps_exactly_the_lowest_scores(tiny_model, tiny_bundle):
    ctx = make_context(tiny_model, tiny_bundle, 0.8, seed=3)
    inverted = build_method("random", {"sanity": "invert"}).initial_masks(ctx)
    # Independently: the same random draw, lowest 20% kept under one global threshold.
    scores = random_scores(make_context(tiny_model, tiny_bundle, 0.8, seed=3))
    expected = masks_from_scores({n: -s for n, s in scores.items()}, 0.8, "global")
    assert all(torch.equal(inverted.masks[n], expected[n]) for n in expected)
    assert abs(inverted.sparsity() - 0.8) < 1e-3


def test_reinit_keeps_the_masks_and_redraws_the_weights(tiny_model, tiny_bundle):
    chosen = build_method("snip", {}).initial_masks(make_context(tiny_model, tiny_bundle, 0.8))
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    redrawn = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in before.items()}
    ctx = dataclasses.replace(
        make_context(tiny_model, tiny_bundle, 0.8), fresh_init=lambda: redrawn
    )
    masks = build_method("snip", {"sanity": "reinit"}).initial_masks(ctx)
    assert all(torch.equal(masks.masks[n], chosen.masks[n]) for n in chosen.masks)
    assert all(torch.equal(tiny_model.state_dict()[k], redrawn[k]) for k in redrawn)


def test_sanity_experiment_adds_each_methods_ablations_and_scratch_controls():
    """Three ablations per prune-at-init method; the two scratch controls per method that starts
    from the trained dense model; a criterion's matched random channels too."""
    with initialize_config_module("benchmarks.conf", version_base="1.3"):
        cells = expand_sweep(compose("config", overrides=["experiment=sanity", "seed=0"]))
    static = [m for m in list_methods() if get_method(m).kind == MethodKind.STATIC]
    pretrained = ["magnitude", "random_pretrained", "disparse_pretrained", "imp", "lth", "adapmtl"]
    criteria = ["channel_magnitude", "channel_group_taylor", "disparse_channel", "cosprune"]
    scratch = ("none", "scratch_e", "scratch_b")
    checks = {(c.method_name, c.method.get("sanity")) for c in cells}
    assert checks == {("dense", None)} | {
        (m, s) for m in static for s in ("none", "shuffle", "reinit", "invert")
    } | {(m, s) for m in [*pretrained, "channel_random"] for s in scratch} | {
        (m, s) for m in criteria for s in (*scratch, "shuffle")
    }
    assert {c.sparsity for c in cells if c.method_name != "dense"} == {0.9}


def runs_frame(method: str, check: str, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"method": method, "sparsity": 0.9, "sanity": check, "seed": [0, 1, 2], "delta_m": values}
    )


@pytest.mark.parametrize(
    ("shuffled", "verdict"),
    [([-20.0, -22.0, -21.5], "yes"), ([-10.5, -10.2, -12.1], "no")],
)
def test_table_says_whether_the_weight_choice_beats_shuffled_masks(shuffled, verdict):
    original = runs_frame("snip", "none", [-10.0, -11.0, -12.0])
    ablated = pd.concat(
        [
            runs_frame("snip", "shuffle", shuffled),
            runs_frame("snip", "reinit", [-10.0, -11.0, -12.5]),
            runs_frame("snip", "invert", [-40.0, -45.0, -41.0]),
        ]
    )
    text = "\n".join(render_sanity_table(original, ablated))
    row = next(line for line in text.splitlines() if line.startswith("| snip"))
    assert row.split("|")[-3].strip().startswith(verdict)  # then the scratch verdict: "-"
    assert "-11.00 ± 2.48" in row  # mean of -10, -11, -12; t(0.975, 2) * 1 / sqrt(3) = 2.48


@pytest.mark.parametrize(
    ("scratch", "verdict"),
    [
        ([-20.0, -22.0, -21.5], "yes: it beats scratch_b"),
        ([-10.5, -10.2, -12.1], "no: not separable from scratch_b"),
        ([-5.0, -6.1, -6.9], "no: scratch_b beats it"),
    ],
)
def test_table_says_whether_the_trained_weights_beat_scratch_b(scratch, verdict):
    original = runs_frame("magnitude", "none", [-10.0, -11.0, -12.0])
    ablated = pd.concat(
        [
            runs_frame("magnitude", "scratch_e", [-9.0, -9.0, -9.5]),
            runs_frame("magnitude", "scratch_b", scratch),
        ]
    )
    text = "\n".join(render_sanity_table(original, ablated))
    row = next(line for line in text.splitlines() if line.startswith("| magnitude"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[-1] == verdict
    assert cells[-2] == "-"  # no shuffled control: no verdict on the weight choice
