"""``imp``: iterative magnitude pruning (Han et al. 2015; Frankle & Carbin 2019).

From the trained dense model: prune the smallest-|w| fraction of the remaining weights, fine-tune,
repeat; the last round lands exactly on the target sparsity and is fine-tuned by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from methods.budgets import top_k_masks
from methods.context import PruneContext
from methods.lifecycle import PrunePretrained
from methods.masks import MaskSet
from methods.options import IterativeOptions
from methods.registry import register_method
from methods.schedules import round_sparsities
from methods.scoring import magnitude_scores


@dataclass(frozen=True)
class IMPOptions(IterativeOptions):
    round_steps: int | None = field(
        default=60,
        metadata={"help": "fine-tuning steps after each intermediate round; null: fine-tune steps"},
    )


@register_method("imp")
class IterativeMagnitudePruning(PrunePretrained):
    Options = IMPOptions
    paper = "Han et al. 2015; Frankle & Carbin, The Lottery Ticket Hypothesis, ICLR 2019"

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        hp = self.options
        schedule = round_sparsities(ctx.sparsity, hp.rounds, hp.fraction)
        masks = top_k_masks(ctx.model, magnitude_scores(ctx.model), schedule[0], hp.budget)
        for sparsity in schedule[1:]:
            masks.apply(ctx.model)
            ctx.train(masks, hp.steps_per_round(ctx.finetune_steps), self.training_lr(ctx))
            masks = top_k_masks(ctx.model, magnitude_scores(ctx.model), sparsity, hp.budget)
        return masks
