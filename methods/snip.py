"""``snip``: single-shot network pruning at initialisation (Lee et al., ICLR 2019).

Score: |g * w|, g the gradient of the summed (weighted) multitask loss over the scoring batches;
the highest scores survive under the layer budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.context import PruneContext
from methods.lifecycle import PruneAtInit
from methods.options import ScoringOptions
from methods.registry import register_method
from methods.sanity import SanityOptions
from methods.scoring import connection_sensitivity


@dataclass(frozen=True)
class SNIPOptions(SanityOptions, ScoringOptions):
    """The shared scoring options and the sanity check."""


@register_method("snip")
class SNIP(PruneAtInit):
    Options = SNIPOptions
    paper = (
        "Lee et al., SNIP: Single-shot Network Pruning based on Connection Sensitivity, ICLR 2019"
    )

    def scores(self, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return connection_sensitivity(ctx, self.options.scoring_batches)
