"""Scores shared by the scoring methods: random, magnitude and gradient-based saliency.

Each returns ``{tensor name: score}`` over the prunable tensors; the higher, the more a weight is
kept. Top-k under a layer budget is ``methods.budgets``'s job, not the score's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from core.progress import Progress
from core.tasks import weighted_task_losses
from methods.context import PruneContext
from methods.masks import prunable_parameters


def random_scores(ctx: PruneContext) -> dict[str, torch.Tensor]:
    """i.i.d. U(0, 1) per weight, drawn from the run's seeded generator."""
    return {
        name: torch.rand(p.shape, generator=ctx.generator).to(p.device)
        for name, p in prunable_parameters(ctx.model).items()
    }


def magnitude_scores(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """|w|. Weights already pruned are zero, so pruning again only ever removes more."""
    return {n: p.detach().abs() for n, p in prunable_parameters(model).items()}


def multitask_loss(
    ctx: PruneContext, batch: dict, task: str | None = None, temperature: float = 1.0
) -> torch.Tensor:
    """Weighted sum of the task losses, or one task's weighted loss when ``task`` is given. Softmax
    outputs (segmentation logits) are divided by ``temperature`` first (GraSP's T)."""
    outputs = ctx.model(batch["image"])
    if temperature != 1.0:
        outputs = {
            t.name: outputs[t.name] / temperature if t.softmax_output else outputs[t.name]
            for t in ctx.tasks
        }
    return weighted_task_losses(outputs, batch, ctx.tasks, ctx.loss_weights, only=task)[0]


@contextlib.contextmanager
def preserved_buffers(model: torch.nn.Module) -> Iterator[None]:
    """Scoring passes run in train mode; keep them from moving BatchNorm running statistics."""
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(saved[name])


def accumulated_gradients(
    ctx: PruneContext,
    num_batches: int,
    task: str | None = None,
    absolute: bool = False,
    temperature: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Gradient of the (task's) loss w.r.t. every prunable tensor, summed over ``num_batches``
    (with ``absolute``: the sum of each batch's |gradient|)."""
    params = prunable_parameters(ctx.model)
    grads = {name: torch.zeros_like(p) for name, p in params.items()}
    ctx.model.train()
    progress = Progress(f"  scoring{f' ({task})' if task else ''}", num_batches)
    with preserved_buffers(ctx.model):
        for batch in ctx.batches(num_batches):
            loss = multitask_loss(ctx, batch, task, temperature)
            values = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for name, g in zip(params, values, strict=True):
                if g is not None:
                    grads[name] += g.abs() if absolute else g
            progress.step()
    return grads


def connection_sensitivity(
    ctx: PruneContext, num_batches: int, task: str | None = None, per_batch_abs: bool = False
) -> dict[str, torch.Tensor]:
    """SNIP's saliency |g * w| (Lee et al. 2019) of the (task's) loss, per prunable tensor, with g
    summed over the batches; with ``per_batch_abs`` the sum of each batch's |g_b * w|."""
    params = prunable_parameters(ctx.model)
    grads = accumulated_gradients(ctx, num_batches, task, absolute=per_batch_abs)
    return {name: (grads[name] * params[name].detach()).abs() for name in params}
