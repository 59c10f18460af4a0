"""AdapMTL: the soft threshold and its gradient, the per-component thresholds on a network, the
exact targeting and the robustness loss weights, each against values worked out by hand from the
paper's formulas; the freeze rule and the weighted gradient on a tiny network."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from core.tasks import weighted_task_losses
from methods.lifecycle import TrainingState
from methods.masks import prunable_parameters
from methods.registry import build_method
from methods.robustness_weighting import RobustnessWeights
from methods.soft_threshold import (
    THRESHOLDS,
    SoftThresholds,
    soft_threshold,
    targeted_thresholds,
    threshold_logit,
)


def test_soft_threshold_and_its_gradients_by_hand():
    weight = torch.tensor([-0.5, -0.1, 0.05, 0.3], requires_grad=True)
    threshold = torch.tensor(0.2, requires_grad=True)
    out = soft_threshold(weight, threshold)
    assert torch.allclose(out, torch.tensor([-0.3, 0.0, 0.0, 0.1]))
    coefficients = torch.tensor([1.0, 2.0, 3.0, 4.0])
    (coefficients * out).sum().backward()
    # d/dw: the coefficient where |w| > threshold, else 0; d/dthreshold: -sum c * sign(w) there
    assert torch.allclose(weight.grad, torch.tensor([1.0, 0.0, 0.0, 4.0]))
    assert threshold.grad.item() == pytest.approx(-(1.0 * -1 + 4.0 * 1))


def test_threshold_logit_inverts_the_sigmoid():
    assert torch.sigmoid(torch.tensor(threshold_logit(0.03))).item() == pytest.approx(0.03)


def test_each_owner_gets_a_threshold_and_the_network_computes_with_thresholded_weights(
    tiny_model,
):
    names_before = set(tiny_model.state_dict())
    reference = copy.deepcopy(tiny_model)
    thresholds = SoftThresholds(tiny_model, threshold_logit(0.05))
    owners = {"shared", "seg", "normal"}
    assert {n for n, _ in tiny_model.named_parameters() if n.startswith(THRESHOLDS)} == {
        f"{THRESHOLDS}.{o}" for o in owners
    }
    with torch.no_grad():
        tiny_model.soft_thresholds["seg"].fill_(threshold_logit(0.2))  # one head differs
        for name, weight in prunable_parameters(reference).items():
            owner = thresholds.owners[name]
            weight.copy_(soft_threshold(weight, 0.2 if owner == "seg" else 0.05))
    x = torch.randn(2, 3, 16, 16)
    tiny_model.eval(), reference.eval()
    for task, y in tiny_model(x).items():
        assert torch.allclose(y, reference(x)[task], atol=1e-6), task
    latent = {n: p.detach().clone() for n, p in prunable_parameters(tiny_model).items()}
    assert not all(torch.equal(latent[n], p) for n, p in prunable_parameters(reference).items())
    expected_sparsity = sum(
        int((latent[n].abs() <= (0.2 if thresholds.owners[n] == "seg" else 0.05)).sum())
        for n in latent
    ) / sum(w.numel() for w in latent.values())
    assert thresholds.sparsity() == pytest.approx(expected_sparsity, abs=1e-6)
    thresholds.remove(thresholds.weight_thresholds())
    assert set(tiny_model.state_dict()) == names_before  # a plain network again
    for task, y in tiny_model(x).items():
        assert torch.allclose(y, reference(x)[task], atol=1e-6), task


def _two_layers(first: list[list[float]], second: list[list[float]]) -> nn.Module:
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(first))
        model[1].weight.copy_(torch.tensor(second))
    return model


@pytest.mark.parametrize(
    "keep,cut,first,second",
    [
        # margins |w| - threshold: 0.3, -0.1, 0.1, -0.15 and -0.05, 0.12 (learned: 3 kept)
        (2, 0.1, [[0.3, 0.0], [0.0, 0.0]], [[0.0, -0.12]]),  # too many: drop the 0.1 margin
        # too few: every threshold lowered by 0.1, reviving the -0.05 margin
        (4, -0.1, [[0.4, 0.0], [0.2, 0.0]], [[0.05, -0.22]]),
    ],
)
def test_targeting_keeps_the_largest_margins_by_hand(keep, cut, first, second):
    model = _two_layers([[0.5, -0.1], [0.3, 0.05]], [[0.25, -0.42]])
    learned = {"0.weight": torch.tensor(0.2), "1.weight": torch.tensor(0.3)}
    final, found = targeted_thresholds(model, learned, keep)
    assert found == pytest.approx(cut)
    with torch.no_grad():
        for name, weight in prunable_parameters(model).items():
            weight.copy_(soft_threshold(weight, final[name]))
    assert torch.allclose(model[0].weight, torch.tensor(first), atol=1e-6)
    assert torch.allclose(model[1].weight, torch.tensor(second), atol=1e-6)


def test_robustness_weights_by_hand():
    weights = RobustnessWeights(["a", "b"], begin=1, window=2)
    steps = [(4, 2), (4, 2), (2, 1), (1, 1), (2, 0.5), (2, 0.5)]
    history = [weights.update(i, {"a": a, "b": b}) for i, (a, b) in enumerate(steps)]
    # step 0 before begin, step 1 only remembers; changes |prev - cur| / cur from step 2:
    # a: 1.0, 1.0, 0.5, 0.0; b: 1.0, 0.0, 1.0, 0.0. A window of 2 fills at step 4 (3 values,
    # the oldest dropped): a mean(1.0, 0.5) = 0.75, b mean(0.0, 1.0) = 0.5, rescaled to sum 2.
    assert history[:4] == [{"a": 1.0, "b": 1.0}] * 4
    assert history[4] == pytest.approx({"a": 0.75 * 2 / 1.25, "b": 0.5 * 2 / 1.25})
    # step 5: a mean(0.5, 0.0) = 0.25, b mean(1.0, 0.0) = 0.5
    assert history[5] == pytest.approx({"a": 0.25 * 2 / 0.75, "b": 0.5 * 2 / 0.75})


def test_the_loss_weights_scale_each_heads_gradient(tiny_model, context_factory):
    ctx = context_factory(tiny_model, 0.5)
    method = build_method("adapmtl", {})
    method.initial_masks(ctx)
    batch = next(ctx.batches(1))
    method.weighting = RobustnessWeights(["seg", "normal"], begin=0, window=1)
    method.weighting.weights = {"seg": 1.5, "normal": 0.5}

    def head_gradients(weights: dict[str, float]) -> dict[str, torch.Tensor]:
        tiny_model.zero_grad()
        loss, _ = weighted_task_losses(tiny_model(batch["image"]), batch, ctx.tasks, weights)
        loss.backward()
        return {n: p.grad.clone() for n, p in tiny_model.named_parameters() if "heads" in n}

    tiny_model.train()
    hooked = head_gradients({})  # the network applies the weights itself
    method._hook.remove()
    plain = head_gradients({"seg": 1.5, "normal": 0.5})  # the same weights in the loss
    for name, grad in hooked.items():
        assert torch.allclose(grad, plain[name], rtol=1e-5, atol=1e-7), name


def test_thresholds_rest_once_the_target_is_reached(tiny_model, context_factory):
    ctx = context_factory(tiny_model, 0.5)
    method = build_method("adapmtl", {"threshold_decay": 2.0})
    masks = method.initial_masks(ctx)
    batch = next(ctx.batches(1))
    optimizer = torch.optim.SGD(tiny_model.parameters(), lr=0.0)
    alphas = method.thresholds.parameters()
    for alpha in alphas:
        alpha.grad = torch.tensor(0.25)
    method.on_backward(TrainingState(ctx, masks, optimizer, batch, 0, 10))
    # below the target (started half a logit under the 50% quantile): gradient + decay * alpha
    assert method.thresholds.sparsity() < 0.5
    for alpha in alphas:
        assert alpha.grad.item() == pytest.approx(0.25 + 2.0 * alpha.item())
    with torch.no_grad():
        for alpha in alphas:
            alpha.fill_(threshold_logit(0.999))  # everything under the threshold
    tiny_model.train()
    tiny_model(batch["image"])
    method.on_backward(TrainingState(ctx, masks, optimizer, batch, 1, 10))
    assert all(alpha.grad is None for alpha in alphas)


def test_finish_lands_on_the_target_and_leaves_a_plain_network(tiny_model, context_factory):
    names = set(tiny_model.state_dict())
    ctx = context_factory(tiny_model, 0.7)
    method = build_method("adapmtl", {})
    masks = method.initial_masks(ctx)
    method.finish(ctx, masks)
    assert set(tiny_model.state_dict()) == names
    assert abs(masks.sparsity() - 0.7) <= 1 / masks.num_total()
    params = prunable_parameters(tiny_model)
    assert all(torch.all((params[n] != 0) == m) for n, m in masks.masks.items())
    assert not any(module._forward_hooks for module in tiny_model.modules())


def test_initial_thresholds_sit_headroom_below_the_target_quantile(tiny_model, context_factory):
    magnitudes = torch.cat(
        [p.detach().abs().flatten() for p in prunable_parameters(tiny_model).values()]
    )
    quantile = magnitudes.sort().values[round(0.6 * magnitudes.numel()) - 1].item()
    method = build_method("adapmtl", {"headroom": 0.75})
    method.initial_masks(context_factory(tiny_model, 0.6))
    for alpha in method.thresholds.parameters():
        assert alpha.item() == pytest.approx(math.log(quantile / (1 - quantile)) - 0.75, rel=1e-5)


@pytest.mark.parametrize(
    "option,value", [("headroom", -1.0), ("weighting_window", 0.0), ("weighting_begin", 1.5)]
)
def test_bad_options_name_themselves(option, value):
    with pytest.raises(ValueError, match=option):
        build_method("adapmtl", {option: value})
