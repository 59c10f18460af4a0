"""GraSP against an explicit Hessian; SynFlow against its closed form on a linear net."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from core.tasks import make_task
from methods.context import PruneContext
from methods.grasp import grasp_keep_scores
from methods.masks import prunable_parameters
from methods.networks.base import MultiTaskNet
from methods.registry import build_method
from methods.synflow import linearized_copy, synflow_scores

TASKS = (make_task("seg", num_classes=4), make_task("normal"))


def toy_context():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(3, 3, 1, bias=False), nn.Tanh())
    heads = {"seg": nn.Conv2d(3, 4, 1, bias=False), "normal": nn.Conv2d(3, 3, 1, bias=False)}
    model = MultiTaskNet(encoder, heads).double()
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(2):
        normal = torch.nn.functional.normalize(torch.randn(2, 3, 3, 3, generator=g), dim=1)
        batches.append(
            {
                "image": torch.randn(2, 3, 3, 3, generator=g).double(),
                "seg": torch.randint(0, 4, (2, 3, 3), generator=g),
                "normal": normal.double(),
            }
        )
    return PruneContext(
        model, TASKS, {}, 0.5, lambda n: iter(batches[:n]), torch.Generator().manual_seed(0)
    )


@pytest.mark.parametrize("temperature", [1.0, 200.0])
def test_grasp_score_is_w_times_explicit_hessian_times_gradient(temperature):
    ctx = toy_context()
    params = prunable_parameters(ctx.model)
    names, shapes = list(params), [p.shape for p in params.values()]
    theta = torch.cat([p.detach().flatten() for p in params.values()])

    def total_loss(flat):
        pieces = torch.split(flat, [s.numel() for s in shapes])
        weights = {n: piece.view(s) for n, piece, s in zip(names, pieces, shapes, strict=True)}
        loss = 0.0
        for batch in ctx.batches(2):
            out = functional_call(ctx.model, weights, (batch["image"],))
            out["seg"] = out["seg"] / temperature  # the softmax head only
            loss = loss + sum(t.compute_loss(out[t.name], batch[t.name]) for t in TASKS)
        return loss

    hessian = torch.autograd.functional.hessian(total_loss, theta)
    gradient = torch.autograd.functional.jacobian(total_loss, theta)
    expected = theta * (hessian @ gradient)
    scores = grasp_keep_scores(ctx, num_batches=2, temperature=temperature)
    got = torch.cat([scores[n].flatten() for n in names])
    assert torch.allclose(got, expected, rtol=1e-8, atol=1e-12)


def test_grasp_removes_the_highest_minus_w_hg():
    ctx = toy_context()
    scores = grasp_keep_scores(ctx, 2)
    masks = build_method("grasp", {"scoring_batches": 2}).make_masks(ctx)
    removal = torch.cat([-scores[n].flatten() for n in scores])
    removed = torch.cat([~masks.masks[n].flatten() for n in scores])
    assert removed.sum() == round(0.5 * removal.numel())
    assert removal[removed].min() > removal[~removed].max()


def test_synflow_scores_match_the_linear_closed_form():
    torch.manual_seed(0)
    encoder = nn.Conv2d(4, 3, 1, bias=False)
    heads = {"a": nn.Conv2d(3, 2, 1, bias=False), "b": nn.Conv2d(3, 5, 1, bias=False)}
    model = MultiTaskNet(encoder, heads)
    work = linearized_copy(model)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable_parameters(work).items()}
    scores = synflow_scores(work, (1, 4, 2, 2), masks)
    pixels = 4
    w1 = model.encoder.weight.detach().double().abs()[:, :, 0, 0]  # [3, 4]
    w2 = {t: h.weight.detach().double().abs()[:, :, 0, 0] for t, h in model.heads.items()}
    paths_out = sum(w.sum(dim=0) for w in w2.values())  # [3]: flow leaving each hidden unit
    paths_in = w1.sum(dim=1)  # [3]: flow reaching each hidden unit from the ones input
    assert torch.allclose(scores["encoder.weight"][:, :, 0, 0], w1 * paths_out[:, None] * pixels)
    for task, w in w2.items():
        assert torch.allclose(
            scores[f"heads.{task}.weight"][:, :, 0, 0], w * paths_in[None, :] * pixels
        )


def test_synflow_leaves_the_model_untouched_and_is_data_free(tiny_model, context_factory):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    ctx = context_factory(tiny_model, 0.9)
    masks = build_method("synflow", {"rounds": 10}).make_masks(ctx)
    assert abs(masks.sparsity() - 0.9) < 0.001
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())


@pytest.mark.parametrize("rounds", [1, 5])
def test_synflow_rounds_option(rounds, tiny_model, context_factory):
    ctx = context_factory(tiny_model, 0.8)
    assert abs(build_method("synflow", {"rounds": rounds}).make_masks(ctx).sparsity() - 0.8) < 1e-3
