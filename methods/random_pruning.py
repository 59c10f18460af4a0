"""``random``: prune at initialisation by uniformly random scores (the paper's lower bound).

Score: i.i.d. U(0, 1) per weight, drawn from the run's seeded generator; top-k under the budget.
"""

from __future__ import annotations

import torch

from methods.budgets import masks_from_scores
from methods.context import PruneContext
from methods.hparams import PruningHparams
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.registry import Method, MethodKind, register_method


def random_scores(ctx: PruneContext) -> dict[str, torch.Tensor]:
    return {
        name: torch.rand(p.shape, generator=ctx.generator).to(p.device)
        for name, p in prunable_parameters(ctx.model).items()
    }


@register_method("random")
class RandomPruning(Method):
    kind = MethodKind.PRUNE_AT_INIT
    Hparams = PruningHparams
    paper = "random pruning at initialisation (baseline in Lee et al. 2019)"

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        scores = random_scores(ctx)
        masks = masks_from_scores(scores, ctx.sparsity, self.hparams.budget)
        return MaskSet(masks, owners_of(ctx.model, masks))
