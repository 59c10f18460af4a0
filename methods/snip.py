"""``snip``: single-shot network pruning at initialisation (Lee et al., ICLR 2019).

Score: |g * w|, g the gradient of the summed (weighted) multitask loss over the scoring batches;
the highest scores survive under the layer budget.
"""

from __future__ import annotations

from methods.budgets import masks_from_scores
from methods.context import PruneContext
from methods.hparams import ScoringHparams
from methods.masks import MaskSet, owners_of
from methods.registry import Method, MethodKind, register_method
from methods.scoring import connection_sensitivity


@register_method("snip")
class Snip(Method):
    kind = MethodKind.PRUNE_AT_INIT
    Hparams = ScoringHparams
    paper = (
        "Lee et al., SNIP: Single-shot Network Pruning based on Connection Sensitivity, ICLR 2019"
    )

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        scores = connection_sensitivity(ctx, self.hparams.scoring_batches)
        masks = masks_from_scores(scores, ctx.sparsity, self.hparams.budget)
        return MaskSet(masks, owners_of(ctx.model, masks))
