"""``random_pretrained``: random pruning of the trained dense model, then fine-tuning (the
DiSparse paper's pretrained "Random" row). Score: i.i.d. U(0, 1) per weight."""

from __future__ import annotations

import torch

from methods.context import PruneContext
from methods.lifecycle import PrunePretrained
from methods.options import PretrainedPruningOptions
from methods.registry import register_method
from methods.scoring import random_scores


@register_method("random_pretrained")
class RandomPretrained(PrunePretrained):
    Options = PretrainedPruningOptions
    paper = "random pruning of a trained model (baseline row in Sun et al., CVPR 2022)"

    def scores(self, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return random_scores(ctx)
