"""``lth``: lottery tickets with rewinding (Frankle et al., Linear Mode Connectivity and the
Lottery Ticket Hypothesis, ICML 2020; k = 0 is the original ticket of Frankle & Carbin 2019).

Rule: from the trained dense model, prune the smallest |w|, rewind the surviving weights to their
values at iteration k of the dense run, retrain; repeat until the target sparsity.
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
class LotteryOptions(IterativeOptions):
    rounds: int = field(default=2, metadata={"help": "prune-rewind-retrain rounds"})
    rewind_step: int | None = field(
        default=None,
        metadata={
            "help": "dense-run iteration k to rewind to; null: the last of "
            "protocol.snapshot_steps; 0: the original lottery ticket"
        },
    )


@register_method("lth")
class LotteryTicketRewinding(PrunePretrained):
    Options = LotteryOptions
    paper = "Frankle et al., Linear Mode Connectivity and the Lottery Ticket Hypothesis, ICML 2020"
    reads_out_after_pruning = False  # it retrains rewound weights: nothing to read out at step 0

    def check_protocol(self, snapshot_steps: tuple[int, ...]) -> None:
        step = self.options.rewind_step
        if step is not None and step not in snapshot_steps:
            raise ValueError(
                f"method=lth: rewind_step={step} but the dense run keeps snapshots only at "
                f"protocol.snapshot_steps={list(snapshot_steps)}; choose one of those or add "
                f"{step} to protocol.snapshot_steps"
            )

    def rewind_step(self, ctx: PruneContext) -> int:
        if self.options.rewind_step is not None:
            return self.options.rewind_step
        if not ctx.snapshot_steps:
            raise ValueError("lth needs protocol.snapshot_steps (dense-run states to rewind to)")
        return max(ctx.snapshot_steps)

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        hp = self.options
        rewind_state = ctx.snapshot(self.rewind_step(ctx))
        schedule = round_sparsities(ctx.sparsity, hp.rounds, hp.fraction)
        for index, sparsity in enumerate(schedule):
            masks = top_k_masks(ctx.model, magnitude_scores(ctx.model), sparsity, hp.budget)
            ctx.model.load_state_dict(rewind_state)
            masks.apply(ctx.model)
            if index < len(schedule) - 1:
                ctx.train(masks, hp.steps_per_round(ctx.finetune_steps), self.training_lr(ctx))
        return masks

    def training_steps(self, ctx: PruneContext) -> int:
        """The final retraining lasts as long as each round's."""
        return self.options.steps_per_round(ctx.finetune_steps)

    def training_lr(self, ctx: PruneContext) -> float | None:
        """Rewound weights are retrained, not fine-tuned: the protocol's training lr."""
        return None
