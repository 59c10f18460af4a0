"""``synflow``: Iterative Synaptic Flow Pruning (Tanaka et al., Pruning neural networks without
any data by iteratively conserving synaptic flow, NeurIPS 2020).

Data-free. With every parameter replaced by its absolute value and an all-ones input, the synaptic
flow R is the sum of all outputs (summed over the task heads); score = |w * dR/dw|. Over n rounds
the density follows the exponential schedule (1 - s)^(k/n) and pruned weights stay pruned. As in
the authors' code, BatchNorm runs in eval mode on absolute-valued statistics. Unlike it (their
``double()`` is commented out), the computation is in float64 so deep products do not underflow.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from methods.budgets import masks_from_scores
from methods.context import PruneContext
from methods.lifecycle import PruneAtInit
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.options import PruningOptions
from methods.registry import register_method
from methods.sanity import SanityOptions
from methods.schedules import exponential_sparsities


@dataclass(frozen=True)
class SynFlowOptions(SanityOptions, PruningOptions):
    rounds: int = field(default=100, metadata={"help": "pruning iterations (paper: 100)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")


def linearized_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A float64, eval-mode copy with every parameter and buffer replaced by its absolute value."""
    work = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in work.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    return work


def synflow_scores(
    work: torch.nn.Module, input_shape: tuple[int, ...], masks: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """|w * dR/dw| of the linearised network ``work`` with ``masks`` applied to its weights."""
    params = prunable_parameters(work)
    originals = {n: p.detach().clone() for n, p in params.items()}
    with torch.no_grad():
        for name, p in params.items():
            p.mul_(masks[name].to(p.dtype))
    ones = torch.ones(
        (1, *input_shape[1:]), dtype=torch.float64, device=next(work.parameters()).device
    )
    flow = sum(out.sum() for out in work(ones).values())
    grads = torch.autograd.grad(flow, list(params.values()))
    scores = {n: (g * p.detach()).abs() for (n, p), g in zip(params.items(), grads, strict=True)}
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(originals[name])
    return scores


@register_method("synflow")
class SynFlow(PruneAtInit):
    Options = SynFlowOptions
    paper = (
        "Tanaka et al., Pruning neural networks without any data by iteratively conserving "
        "synaptic flow, NeurIPS 2020"
    )

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        work = linearized_copy(ctx.model)
        input_shape = tuple(next(ctx.batches(1))["image"].shape)
        params = prunable_parameters(work)
        masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
        for sparsity in exponential_sparsities(ctx.sparsity, self.options.rounds):
            scores = synflow_scores(work, input_shape, masks)
            # pruned weights rank below every live one, so they are never revived
            scores = {
                n: torch.where(masks[n], s, torch.full_like(s, -1.0)) for n, s in scores.items()
            }
            masks = masks_from_scores(scores, sparsity, self.options.budget)
        masks = {n: m.to(ctx.model.get_parameter(n).device) for n, m in masks.items()}
        return MaskSet(masks, owners_of(ctx.model, masks))
