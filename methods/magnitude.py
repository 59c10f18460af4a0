"""``magnitude``: one-shot magnitude pruning of the trained dense model, then fine-tuning
(Han et al. 2015). Score: |w|.
"""

from __future__ import annotations

from methods.budgets import masks_from_scores
from methods.context import PruneContext
from methods.hparams import PruningHparams
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.registry import Method, MethodKind, register_method


@register_method("magnitude")
class MagnitudePruning(Method):
    kind = MethodKind.PRUNE_PRETRAINED
    Hparams = PruningHparams
    paper = "Han et al., Learning both Weights and Connections, NeurIPS 2015"

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        scores = {n: p.detach().abs() for n, p in prunable_parameters(ctx.model).items()}
        masks = masks_from_scores(scores, ctx.sparsity, self.hparams.budget)
        return MaskSet(masks, owners_of(ctx.model, masks))
