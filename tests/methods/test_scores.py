"""SNIP and DiSparse saliencies against independently computed |g * w|.

The gradient is checked against central finite differences of the loss in float64, and the masks
against top-k of scores computed through ``torch.func`` (a separate code path from the methods').
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call, grad, replace_all_batch_norm_modules_

from methods.budgets import masks_from_scores
from methods.context import PruneContext, rebatched
from methods.disentangled import per_task_scores
from methods.masks import prunable_parameters
from methods.registry import build_method
from methods.scoring import connection_sensitivity, multitask_loss
from tests.helpers import make_context


@pytest.fixture
def double_setup(tiny_model, tiny_bundle):
    model = tiny_model.double()
    ctx = make_context(model, tiny_bundle, sparsity=0.8)
    source = ctx.batches

    def as_double(n):
        return iter(
            [
                {k: v.double() if v.is_floating_point() else v for k, v in b.items()}
                for b in source(n)
            ]
        )

    ctx.batches = as_double
    return model, ctx


def total_loss(ctx, task=None, batches=2) -> float:
    ctx.model.train()
    with torch.no_grad():
        return sum(multitask_loss(ctx, b, task).item() for b in ctx.batches(batches))


def finite_difference_entries(ctx, task, picks, h=1e-6):
    params = prunable_parameters(ctx.model)
    values = {}
    for name, index in picks:
        weight = params[name]
        original = weight.data[index].item()
        with torch.no_grad():
            weight.data[index] = original + h
            up = total_loss(ctx, task)
            weight.data[index] = original - h
            down = total_loss(ctx, task)
            weight.data[index] = original
        values[(name, index)] = abs((up - down) / (2 * h) * original)
    return values


def sample_entries(model, count=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = prunable_parameters(model)
    names = list(params)
    picks = []
    for i in range(count):
        name = names[i % len(names)]
        flat = torch.randint(params[name].numel(), (1,), generator=g).item()
        picks.append(
            (
                name,
                tuple(int(x) for x in torch.unravel_index(torch.tensor(flat), params[name].shape)),
            )
        )
    return picks


def test_snip_saliency_is_abs_gradient_times_weight(double_setup):
    model, ctx = double_setup
    scores = connection_sensitivity(ctx, num_batches=2)
    picks = sample_entries(model)
    for (name, index), expected in finite_difference_entries(ctx, None, picks).items():
        assert scores[name][index].item() == pytest.approx(expected, rel=1e-4, abs=1e-10)


def test_disparse_task_saliency_uses_only_that_tasks_loss_and_scope(double_setup):
    model, ctx = double_setup
    method = build_method("disparse_static", {"scoring_batches": 2, "per_batch_abs": False})
    per_task = per_task_scores(ctx, method.task_scores)
    assert set(per_task["seg"]) == {
        n for n in prunable_parameters(model) if not n.startswith("heads.normal.")
    }
    for task in ("seg", "normal"):
        raw = connection_sensitivity(ctx, 2, task=task)
        norm = sum(raw[n].sum() for n in per_task[task])
        picks = [p for p in sample_entries(model, 16, seed=1) if p[0] in per_task[task]]
        for (name, index), expected in finite_difference_entries(ctx, task, picks).items():
            assert per_task[task][name][index].item() * norm.item() == pytest.approx(
                expected, rel=1e-4, abs=1e-10
            )
        assert sum(s.sum() for s in per_task[task].values()).item() == pytest.approx(1.0)


def test_snip_masks_are_global_top_k_of_independently_computed_saliency(tiny_model, tiny_bundle):
    ctx = make_context(tiny_model, tiny_bundle, sparsity=0.9)
    functional_model = copy.deepcopy(tiny_model).train()
    replace_all_batch_norm_modules_(functional_model)  # batch statistics, no buffer updates
    masks = build_method("snip", {"scoring_batches": 4}).make_masks(ctx)
    params = {n: p.detach() for n, p in functional_model.named_parameters()}
    prunable = prunable_parameters(functional_model)

    def loss_of(weights):
        total = 0.0
        for batch in ctx.batches(4):
            out = functional_call(functional_model, {**params, **weights}, (batch["image"],))
            total = total + sum(t.compute_loss(out[t.name], batch[t.name]) for t in ctx.tasks)
        return total

    grads = grad(loss_of)({n: params[n] for n in prunable})
    expected = masks_from_scores({n: (grads[n] * params[n]).abs() for n in prunable}, 0.9, "global")
    agreement = sum(int((masks.masks[n] == expected[n]).sum()) for n in prunable)
    total = sum(m.numel() for m in expected.values())
    assert agreement / total > 0.999  # float32 ties at the threshold may swap a weight or two


def test_disparse_pretrained_taskonomy_score_is_summed_abs_gradient_times_weight_squared(
    double_setup,
):
    model, ctx = double_setup
    method = build_method(
        "disparse_pretrained", {"score": "grad_magnitude_sq", "scoring_batches": 2}
    )
    scores = method.task_scores(ctx, "seg")
    params = prunable_parameters(model)
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    for batch in ctx.batches(2):  # independently: one backward per batch, |g| summed
        model.zero_grad()
        multitask_loss(ctx, batch, task="seg").backward()
        for n, p in params.items():
            if p.grad is not None:
                expected[n] += p.grad.abs()
    for n, p in params.items():
        torch.testing.assert_close(scores[n], expected[n] * p.detach() ** 2)
    assert build_method("disparse_pretrained", {}).options.score == "magnitude"


def test_disparse_static_authors_options_per_batch_abs_and_xavier_copy(double_setup):
    model, ctx = double_setup
    method = build_method("disparse_static", {"scoring_batches": 2, "per_batch_abs": True})
    scores = method.task_scores(ctx, "normal")
    params = prunable_parameters(model)
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    for batch in ctx.batches(2):  # independently: |g_b * w| per batch, summed
        model.zero_grad()
        multitask_loss(ctx, batch, task="normal").backward()
        for n, p in params.items():
            if p.grad is not None:
                expected[n] += (p.grad * p.detach()).abs()
    for n in params:
        torch.testing.assert_close(scores[n], expected[n])
    defaults = build_method("disparse_static", {}).options  # the authors' method by default
    assert (defaults.score_copy, defaults.per_batch_abs) == ("xavier", True)


def test_disparse_static_xavier_copy_is_seeded_and_leaves_the_network_untouched(
    tiny_model, context_factory
):
    params = prunable_parameters(tiny_model)
    before = {n: p.detach().clone() for n, p in params.items()}
    xavier = build_method("disparse_static", {"scoring_batches": 2, "score_copy": "xavier"})
    first = xavier.make_masks(context_factory(tiny_model, 0.8, seed=5))
    again = xavier.make_masks(context_factory(tiny_model, 0.8, seed=5))
    plain = build_method("disparse_static", {"scoring_batches": 2, "score_copy": "model"})
    on_model = plain.make_masks(context_factory(tiny_model, 0.8, seed=5))
    assert all(torch.equal(first.masks[n], again.masks[n]) for n in params)  # seeded draw
    assert any(not torch.equal(first.masks[n], on_model.masks[n]) for n in params)
    assert all(torch.equal(p.detach(), before[n]) for n, p in params.items())
    assert abs(first.sparsity() - 0.8) < 0.001


def test_rebatched_context_cuts_the_same_training_images_into_batches_of_the_given_size():
    images = torch.arange(12.0).view(12, 1, 1, 1)
    stream = [{"image": images[i : i + 3], "seg": images[i : i + 3] * 10} for i in range(0, 12, 3)]
    ctx = PruneContext(
        model=torch.nn.Identity(),
        tasks=(),
        loss_weights={},
        sparsity=0.5,
        batches=lambda n: iter(stream[:n]),
        generator=torch.Generator(),
    )
    assert rebatched(ctx, None) is ctx
    cut = list(rebatched(ctx, 4).batches(2))
    assert [b["image"].flatten().tolist() for b in cut] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert cut[1]["seg"].flatten().tolist() == [40, 50, 60, 70]
    assert [len(b["image"]) for b in rebatched(ctx, 2).batches(5)] == [2] * 5
