"""``grasp``: Gradient Signal Preservation (Wang et al., Picking Winning Tickets Before Training
by Preserving Gradient Flow, ICLR 2020).

Score S = -w * (H g), H the Hessian and g the gradient of the summed multitask loss over the
scoring batches; the weights with the highest S are removed (we keep the top of -S = w * Hg).
Hg is a Hessian-vector product by double backpropagation. The paper's softmax temperature is a
classification detail with no counterpart for dense regression heads, so it is not used.
"""

from __future__ import annotations

import torch

from methods.context import PruneContext
from methods.hparams import ScoringHparams
from methods.lifecycle import PruneAtInit
from methods.masks import prunable_parameters
from methods.registry import register_method
from methods.scoring import accumulated_gradients, multitask_loss, preserved_buffers


def hessian_gradient_product(ctx: PruneContext, num_batches: int) -> dict[str, torch.Tensor]:
    """H g for the summed loss over ``num_batches`` batches, g its (detached) gradient."""
    params = prunable_parameters(ctx.model)
    gradient = accumulated_gradients(ctx, num_batches)
    product = {name: torch.zeros_like(p) for name, p in params.items()}
    ctx.model.train()
    with preserved_buffers(ctx.model):
        for batch in ctx.batches(num_batches):
            loss = multitask_loss(ctx, batch)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            dot = sum((g * gradient[n]).sum() for n, g in zip(params, grads, strict=True))
            for name, hg in zip(
                params, torch.autograd.grad(dot, list(params.values())), strict=True
            ):
                product[name] += hg
    return product


def grasp_keep_scores(ctx: PruneContext, num_batches: int) -> dict[str, torch.Tensor]:
    """-S = w * Hg: the higher, the more a weight is kept."""
    params = prunable_parameters(ctx.model)
    hg = hessian_gradient_product(ctx, num_batches)
    return {name: params[name].detach() * hg[name] for name in params}


@register_method("grasp")
class GraSP(PruneAtInit):
    Hparams = ScoringHparams
    paper = (
        "Wang et al., Picking Winning Tickets Before Training by Preserving Gradient Flow, "
        "ICLR 2020"
    )

    def scores(self, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return grasp_keep_scores(ctx, self.hparams.scoring_batches)
