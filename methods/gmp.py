"""``gmp``: gradual magnitude pruning (Zhu & Gupta, To prune, or not to prune: exploring the
efficacy of pruning for model compression, 2017).

Trains from a fresh initialisation and prunes while it trains: every ``every`` steps from
``begin`` to ``end`` (fractions of the training steps) the smallest-|w| weights are removed so that
the sparsity follows the cubic schedule from 0 to the target (``methods.schedules.cubic_sparsity``),
the last pruning step landing exactly on the target. Pruned weights stay pruned; the network keeps
training at the target sparsity after ``end``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from methods.budgets import top_k_masks
from methods.context import PruneContext
from methods.lifecycle import PruneDuringTraining, TrainingState
from methods.masks import MaskSet
from methods.options import PruningOptions
from methods.registry import register_method
from methods.schedules import cubic_sparsity
from methods.scoring import magnitude_scores


@dataclass(frozen=True)
class GMPOptions(PruningOptions):
    begin: float = field(
        default=0.1, metadata={"help": "first pruning step, as a fraction of training"}
    )
    end: float = field(
        default=0.6, metadata={"help": "pruning reaches the target here (fraction of training)"}
    )
    every: int = field(default=10, metadata={"help": "steps between pruning steps"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.begin <= self.end <= 1.0:
            raise ValueError(f"need 0 <= begin <= end <= 1, got begin={self.begin}, end={self.end}")
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")


@register_method("gmp")
class GradualMagnitudePruning(PruneDuringTraining):
    Options = GMPOptions
    paper = "Zhu & Gupta, To prune, or not to prune, ICLR Workshop 2018 (arXiv 2017)"

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        return MaskSet.dense(ctx.model)

    def pruning_window(self, total_steps: int) -> tuple[int, int]:
        """(first, last) pruning step; the last is always a step that is taken."""
        last = max(0, min(math.floor(self.options.end * total_steps), total_steps - 1))
        first = min(math.floor(self.options.begin * total_steps), last)
        return first, last

    def on_backward(self, state: TrainingState) -> None:
        first, last = self.pruning_window(state.total_steps)
        step = state.step
        if step < first or step > last or ((step - first) % self.options.every and step != last):
            return
        target = cubic_sparsity(step, first, last, state.ctx.sparsity)
        self.prune_to(state.ctx.model, state.masks, target)

    def finish(self, ctx: PruneContext, masks: MaskSet) -> None:
        """A run too short to reach the last pruning step is pruned to the target here."""
        if masks.sparsity() < ctx.sparsity - 0.5 / masks.num_total():
            self.prune_to(ctx.model, masks, ctx.sparsity)
            masks.apply(ctx.model)

    def prune_to(self, model: torch.nn.Module, masks: MaskSet, sparsity: float) -> None:
        """Keep the largest |w| among the surviving weights so that ``sparsity`` is reached."""
        scores = {
            n: torch.where(masks.masks[n], s, torch.full_like(s, -1.0))
            for n, s in magnitude_scores(model).items()
        }
        for name, mask in top_k_masks(model, scores, sparsity, self.options.budget).masks.items():
            masks.set_mask(name, mask)
