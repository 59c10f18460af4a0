"""``grasp``: Gradient Signal Preservation (Wang et al., Picking Winning Tickets Before Training
by Preserving Gradient Flow, ICLR 2020).

Score S = -w * (H g), H the Hessian and g the gradient of the summed multitask loss over the
scoring batches; the weights with the highest S are removed (we keep the top of -S = w * Hg).
Hg is a Hessian-vector product by double backpropagation. The paper divides classification logits
by a temperature T = 200 before the loss; here ``temperature`` applies to the softmax heads
(segmentation), the regression heads (normal, depth, keypoint, edge) have no logits to temper.
The default T = 1 keeps the plain loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from methods.context import PruneContext
from methods.lifecycle import PruneAtInit
from methods.masks import prunable_parameters
from methods.options import ScoringOptions
from methods.registry import register_method
from methods.sanity import SanityOptions
from methods.scoring import accumulated_gradients, multitask_loss, preserved_buffers


def hessian_gradient_product(
    ctx: PruneContext, num_batches: int, temperature: float = 1.0
) -> dict[str, torch.Tensor]:
    """H g for the summed loss over ``num_batches`` batches, g its (detached) gradient."""
    params = prunable_parameters(ctx.model)
    gradient = accumulated_gradients(ctx, num_batches, temperature=temperature)
    product = {name: torch.zeros_like(p) for name, p in params.items()}
    ctx.model.train()
    with preserved_buffers(ctx.model):
        for batch in ctx.batches(num_batches):
            loss = multitask_loss(ctx, batch, temperature=temperature)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            dot = sum((g * gradient[n]).sum() for n, g in zip(params, grads, strict=True))
            for name, hg in zip(
                params, torch.autograd.grad(dot, list(params.values())), strict=True
            ):
                product[name] += hg
    return product


def grasp_keep_scores(
    ctx: PruneContext, num_batches: int, temperature: float = 1.0
) -> dict[str, torch.Tensor]:
    """-S = w * Hg: the higher, the more a weight is kept."""
    params = prunable_parameters(ctx.model)
    hg = hessian_gradient_product(ctx, num_batches, temperature)
    return {name: params[name].detach() * hg[name] for name in params}


@dataclass(frozen=True)
class GraSPOptions(SanityOptions, ScoringOptions):
    temperature: float = field(
        default=1.0,
        metadata={"help": "segmentation logits divided by this before the loss (paper: 200)"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


@register_method("grasp")
class GraSP(PruneAtInit):
    Options = GraSPOptions
    paper = (
        "Wang et al., Picking Winning Tickets Before Training by Preserving Gradient Flow, "
        "ICLR 2020"
    )

    def scores(self, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return grasp_keep_scores(ctx, self.options.scoring_batches, self.options.temperature)
