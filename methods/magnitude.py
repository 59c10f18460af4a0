"""``magnitude``: one-shot magnitude pruning of the trained dense model, then fine-tuning
(Han et al. 2015). Score: |w|."""

from __future__ import annotations

import torch

from methods.context import PruneContext
from methods.lifecycle import PrunePretrained
from methods.options import PretrainedPruningOptions
from methods.registry import register_method
from methods.scoring import magnitude_scores


@register_method("magnitude")
class MagnitudePruning(PrunePretrained):
    Options = PretrainedPruningOptions
    paper = "Han et al., Learning both Weights and Connections, NeurIPS 2015"

    def scores(self, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return magnitude_scores(ctx.model)
