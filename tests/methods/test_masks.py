"""Mask invariants: pruned weights stay exactly zero, counts are real, round trips are exact."""

from __future__ import annotations

import torch

from methods.budgets import masks_from_scores
from methods.masks import MaskSet, measure_sparsity, owners_of, prunable_parameters
from methods.networks import SHARED


def random_masks(model, sparsity=0.8, seed=0) -> MaskSet:
    g = torch.Generator().manual_seed(seed)
    params = prunable_parameters(model)
    scores = {n: torch.rand(p.shape, generator=g) for n, p in params.items()}
    masks = masks_from_scores(scores, sparsity, "global")
    return MaskSet(masks, owners_of(model, masks))


def test_prunable_tensors_are_conv_and_linear_weights_with_structural_owners(tiny_model):
    params = prunable_parameters(tiny_model)
    assert all(p.dim() == 4 for p in params.values())
    assert not any(n.endswith("bias") for n in params)
    owners = owners_of(tiny_model, params)
    assert {owners[n] for n in params if n.startswith("encoder.")} == {SHARED}
    assert owners["heads.seg.1.weight"] == "seg"
    assert owners["heads.normal.0.0.weight"] == "normal"


def test_pruned_weights_stay_zero_through_real_optimizer_steps(tiny_model, tiny_bundle):
    masks = random_masks(tiny_model)
    optimizer = torch.optim.Adam(tiny_model.parameters(), lr=0.1)
    masks.attach(tiny_model, optimizer)
    batch = tiny_bundle.splits["train"][0]
    for _ in range(3):
        out = tiny_model(batch["image"][None])
        loss = sum(o.square().mean() for o in out.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for name, mask in masks.masks.items():
            weight = tiny_model.get_parameter(name)
            assert torch.all(weight[~mask] == 0)
            assert torch.all(weight[mask] != 0)
    assert measure_sparsity(tiny_model)["overall"] == masks.sparsity()


def test_reported_sparsity_is_the_real_zero_count_overall_and_per_owner(tiny_model):
    masks = random_masks(tiny_model, 0.6)
    masks.apply(tiny_model)
    params = prunable_parameters(tiny_model)
    zeros = sum(int((p == 0).sum()) for p in params.values())
    total = sum(p.numel() for p in params.values())
    measured = measure_sparsity(tiny_model)
    assert measured["overall"] == zeros / total
    seg_names = [n for n in params if n.startswith("heads.seg.")]
    seg_zeros = sum(int((params[n] == 0).sum()) for n in seg_names)
    assert measured["owner/seg"] == seg_zeros / sum(params[n].numel() for n in seg_names)


def test_state_dict_round_trip_and_apply_at_load(tiny_model, tmp_path):
    masks = random_masks(tiny_model, 0.7)
    masks.apply(tiny_model)
    torch.save({"model": tiny_model.state_dict(), "masks": masks.state_dict()}, tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    restored = MaskSet.from_state_dict(state["masks"])
    assert restored.owners == masks.owners
    assert all(torch.equal(restored.masks[n], masks.masks[n]) for n in masks.masks)
    fresh = type(tiny_model)(tiny_model.encoder, dict(tiny_model.heads))
    for p in fresh.parameters():
        torch.nn.init.constant_(p, 1.0)
    restored.apply(fresh)
    assert measure_sparsity(fresh)["overall"] == masks.sparsity()


def test_dense_mask_keeps_everything(tiny_model):
    masks = MaskSet.dense(tiny_model)
    assert masks.sparsity() == 0.0
    assert set(masks.masks) == set(prunable_parameters(tiny_model))
