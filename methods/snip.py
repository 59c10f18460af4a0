"""``snip``: single-shot network pruning at initialisation (Lee et al., ICLR 2019).

Score: |g * w|, g the gradient of the summed (weighted) multitask loss over the scoring batches;
the highest scores survive under the layer budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.context import PruneContext
from methods.hparams import ScoringHparams
from methods.lifecycle import PruneAtInit
from methods.registry import register_method
from methods.sanity import SanityHparams
from methods.scoring import connection_sensitivity


@dataclass(frozen=True)
class SNIPHparams(SanityHparams, ScoringHparams):
    """The shared scoring options and the sanity check."""


@register_method("snip")
class SNIP(PruneAtInit):
    Hparams = SNIPHparams
    paper = (
        "Lee et al., SNIP: Single-shot Network Pruning based on Connection Sensitivity, ICLR 2019"
    )

    def scores(self, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return connection_sensitivity(ctx, self.hparams.scoring_batches)
