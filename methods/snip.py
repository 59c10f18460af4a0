"""``snip``: single-shot network pruning at initialisation (Lee et al., ICLR 2019).

Score: |g * w|, g the gradient of the summed (weighted) multitask loss over the scoring batches;
the highest scores survive under the layer budget.
"""

from __future__ import annotations

import torch

from methods.context import PruneContext
from methods.hparams import ScoringHparams
from methods.lifecycle import PruneAtInit
from methods.registry import register_method
from methods.scoring import connection_sensitivity


@register_method("snip")
class Snip(PruneAtInit):
    Hparams = ScoringHparams
    paper = (
        "Lee et al., SNIP: Single-shot Network Pruning based on Connection Sensitivity, ICLR 2019"
    )

    def scores(self, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return connection_sensitivity(ctx, self.hparams.scoring_batches)
