"""``magnitude``: one-shot magnitude pruning of the trained dense model, then fine-tuning
(Han et al. 2015). Score: |w|.

Also home of the pieces that iterative magnitude methods (``imp``, ``lth``) reuse: the mask of the
largest weights and the per-round sparsity schedule.
"""

from __future__ import annotations

import math

import torch

from methods.budgets import masks_from_scores
from methods.context import PruneContext
from methods.hparams import PruningHparams
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.registry import Method, MethodKind, register_method


def magnitude_masks(model: torch.nn.Module, sparsity: float, budget: str) -> MaskSet:
    """Keep the largest |w| under ``budget``. Weights already at zero are the first to go, so
    pruning a pruned model again only ever removes more."""
    scores = {n: p.detach().abs() for n, p in prunable_parameters(model).items()}
    masks = masks_from_scores(scores, sparsity, budget)
    return MaskSet(masks, owners_of(model, masks))


def round_sparsities(target: float, rounds: int, fraction: float | None = None) -> list[float]:
    """Sparsity after each pruning round when every round removes the same fraction of the
    remaining weights. With ``fraction`` unset it is solved from ``rounds`` so the last round
    lands on ``target``; with it set, the rounds needed are derived and the last is clipped to
    ``target``. The last entry is always exactly ``target``."""
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target sparsity must be in [0, 1), got {target}")
    if fraction is None:
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        fraction = 1.0 - (1.0 - target) ** (1.0 / rounds)
    elif not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    else:
        rounds = max(1, math.ceil(math.log(1.0 - target) / math.log(1.0 - fraction) - 1e-9))
    schedule = [min(1.0 - (1.0 - fraction) ** r, target) for r in range(1, rounds + 1)]
    schedule[-1] = target
    return schedule


@register_method("magnitude")
class MagnitudePruning(Method):
    kind = MethodKind.PRUNE_PRETRAINED
    Hparams = PruningHparams
    paper = "Han et al., Learning both Weights and Connections, NeurIPS 2015"

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        return magnitude_masks(ctx.model, ctx.sparsity, self.hparams.budget)
