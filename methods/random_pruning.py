"""``random``: prune at initialisation by uniformly random scores (the paper's lower bound).

Score: i.i.d. U(0, 1) per weight, drawn from the run's seeded generator; top-k under the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.context import PruneContext
from methods.lifecycle import PruneAtInit
from methods.options import PruningOptions
from methods.registry import register_method
from methods.sanity import SanityOptions
from methods.scoring import random_scores


@dataclass(frozen=True)
class RandomOptions(SanityOptions, PruningOptions):
    """The layer budget and the sanity check."""


@register_method("random")
class RandomPruning(PruneAtInit):
    Options = RandomOptions
    paper = "random pruning at initialisation (baseline in Lee et al. 2019)"

    def scores(self, ctx: PruneContext) -> dict[str, torch.Tensor]:
        return random_scores(ctx)
