"""RigL, SET and DiSparse dynamic: schedule, drop/grow rule, constant density, zero growth."""

from __future__ import annotations

import math

import pytest
import torch

from methods.disparse_dynamic import union_priority
from methods.dynamic import drop_and_grow, update_layer
from methods.lifecycle import TrainingState
from methods.masks import prunable_parameters
from methods.registry import build_method
from methods.schedules import update_fraction
from methods.scoring import multitask_loss


@pytest.mark.parametrize("step", [0, 10, 37, 50, 99])
def test_update_fraction_is_the_cosine_formula(step):
    assert update_fraction(step, 0.3, 100) == pytest.approx(
        0.15 * (1 + math.cos(math.pi * step / 100))
    )


def test_update_fraction_endpoints():
    assert update_fraction(0, 0.3, 100) == pytest.approx(0.3)
    assert update_fraction(50, 0.3, 100) == pytest.approx(0.15)
    assert update_fraction(100, 0.3, 100) == 0.0
    assert update_fraction(150, 0.3, 100) == 0.0


def test_drop_and_grow_by_hand():
    weight = torch.tensor([0.5, -0.1, 0.0, 0.3, 0.0, 0.2])
    mask = torch.tensor([True, True, False, True, False, True])
    grow = torch.tensor([9.0, 1.0, 5.0, 9.0, 7.0, 2.0])
    new_mask, dropped, grown = drop_and_grow(weight, mask, grow, 2)
    assert dropped.tolist() == [False, True, False, False, False, True]  # |-0.1|, |0.2|
    assert grown.tolist() == [False, False, True, False, True, False]  # inactive with 7 and 5
    assert new_mask.tolist() == [True, False, True, True, True, False]
    assert new_mask.sum() == mask.sum()


def test_union_priority_top_n_is_the_union_of_each_tasks_top_m():
    a = torch.tensor([8.0, 7, 6, 5, 4, 3, 2, 1])
    b = torch.tensor([1.0, 2, 3, 4, 5, 6, 7, 8])
    inactive = torch.ones(8, dtype=torch.bool)
    priority = union_priority([a, b], inactive)
    top4 = set(torch.topk(priority, 4).indices.tolist())
    assert top4 == {0, 1} | {7, 6}  # top-2 of each task
    inactive[0] = False  # an active weight is never proposed
    priority = union_priority([a, b], inactive)
    assert set(torch.topk(priority, 4).indices.tolist()) == {1, 2, 7, 6}


def dynamic_setup(name, tiny_model, context_factory, sparsity=0.8):
    ctx = context_factory(tiny_model, sparsity)
    method = build_method(name, {"delta_t": 5})
    masks = method.make_masks(ctx)
    optimizer = torch.optim.Adam(tiny_model.parameters(), lr=0.01)
    masks.attach(tiny_model, optimizer)
    batch = next(ctx.batches(1))
    for _ in range(2):  # real steps so weights, gradients and Adam state exist
        optimizer.zero_grad()
        multitask_loss(ctx, batch).backward()
        optimizer.step()
    optimizer.zero_grad()
    multitask_loss(ctx, batch).backward()
    return ctx, method, masks, optimizer, batch


@pytest.mark.parametrize("name", ["rigl", "set", "disparse_dynamic"])
def test_update_keeps_every_layers_density_and_grows_zeros(name, tiny_model, context_factory):
    ctx, method, masks, optimizer, batch = dynamic_setup(name, tiny_model, context_factory)
    before = {n: m.clone() for n, m in masks.masks.items()}
    method.on_backward(TrainingState(ctx, masks, optimizer, batch, 5, 100))
    params = prunable_parameters(tiny_model)
    changed = 0
    for n, mask in masks.masks.items():
        assert mask.sum() == before[n].sum()
        grown = mask & ~before[n]
        assert torch.all(params[n][grown] == 0)
        assert torch.all(optimizer.state[params[n]]["exp_avg"][grown] == 0)
        changed += int(grown.sum())
    assert changed > 0
    optimizer.step()  # the attached hook applies the updated masks
    for n, mask in masks.masks.items():
        assert torch.all(params[n][~mask] == 0)


def test_rigl_drops_smallest_active_and_grows_largest_gradient(tiny_model, context_factory):
    ctx, method, masks, optimizer, batch = dynamic_setup("rigl", tiny_model, context_factory)
    params = prunable_parameters(tiny_model)
    before = {n: m.clone() for n, m in masks.masks.items()}
    weights = {n: p.detach().clone() for n, p in params.items()}
    grads = {n: p.grad.detach().clone() for n, p in params.items()}
    method.on_backward(TrainingState(ctx, masks, optimizer, batch, 5, 100))
    count = update_fraction(5, 0.3, 75)
    for n, mask in masks.masks.items():
        k = round(count * int(before[n].sum()))
        if k == 0:
            continue
        active = before[n].flatten().nonzero().flatten()
        order = weights[n].flatten()[active].abs().argsort()
        expected_drop = set(active[order[:k]].tolist())
        after_drop = before[n].flatten().clone()
        after_drop[list(expected_drop)] = False
        candidates = (~after_drop).nonzero().flatten()
        best = candidates[grads[n].flatten()[candidates].abs().argsort(descending=True)[:k]]
        expected = after_drop.clone()
        expected[best] = True
        assert torch.equal(mask.flatten(), expected)


def test_disparse_dynamic_head_growth_follows_its_own_task(tiny_model, context_factory):
    ctx, method, masks, optimizer, batch = dynamic_setup(
        "disparse_dynamic", tiny_model, context_factory
    )
    head = "heads.seg.1.weight"
    before = masks.masks[head].clone()
    seg_grad = torch.autograd.grad(
        multitask_loss(ctx, batch, task="seg"), [tiny_model.get_parameter(head)]
    )[0]
    weight = tiny_model.get_parameter(head).detach().clone()
    method.on_backward(TrainingState(ctx, masks, optimizer, batch, 5, 100))
    k = round(update_fraction(5, 0.3, 75) * int(before.sum()))
    expected, _, _ = drop_and_grow(weight, before, seg_grad.abs(), k)
    assert torch.equal(masks.masks[head], expected)


def test_a_weight_dropped_and_grown_back_keeps_its_value_and_optimizer_state():
    weight = torch.nn.Parameter(torch.tensor([0.5, -0.1, 0.0, 0.3, 0.0]))
    mask = torch.tensor([True, True, False, True, False])
    optimizer = torch.optim.Adam([weight], lr=0.1)
    weight.grad = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    optimizer.step()  # real Adam moments for every entry
    with torch.no_grad():
        weight.copy_(torch.tensor([0.5, -0.1, 0.0, 0.3, 0.0]))
    moments = optimizer.state[weight]["exp_avg"].clone()
    # drop 2: the smallest active |w| are -0.1 (index 1) and 0.3 (index 3); grow the two best
    # scored among the then-inactive 1, 2, 3, 4: index 1 (dropped, grown back) and index 4 (new)
    grow = torch.tensor([0.0, 9.0, 1.0, 2.0, 8.0])
    new_mask = update_layer(weight, mask, grow, 2, optimizer)
    assert new_mask.tolist() == [True, True, False, False, True]
    assert weight[1].item() == pytest.approx(-0.1)  # grown back: value kept
    assert optimizer.state[weight]["exp_avg"][1] == moments[1]  # and its moments
    assert weight[4].item() == 0.0 and optimizer.state[weight]["exp_avg"][4] == 0  # newly grown
    assert optimizer.state[weight]["exp_avg"][3] == moments[3]  # dropped: masked, state untouched
