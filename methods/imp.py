"""``imp``: iterative magnitude pruning (Han et al. 2015; Frankle & Carbin 2019).

From the trained dense model: prune the smallest-|w| fraction of the remaining weights, fine-tune,
repeat; the last round lands exactly on the target sparsity and is fine-tuned by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from methods.context import PruneContext
from methods.hparams import PruningHparams
from methods.magnitude import magnitude_masks, round_sparsities
from methods.masks import MaskSet
from methods.registry import Method, MethodKind, register_method


@dataclass(frozen=True)
class IterativeHparams(PruningHparams):
    rounds: int = field(default=3, metadata={"help": "pruning rounds (ignored if fraction is set)"})
    fraction: float | None = field(
        default=None,
        metadata={
            "help": "fraction of the remaining weights removed per round; null: solved "
            "from rounds so the last round hits the target"
        },
    )
    round_steps: int | None = field(
        default=None,
        metadata={"help": "training steps after each intermediate round; null: fine-tune steps"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.round_steps is not None and self.round_steps < 0:
            raise ValueError(f"round_steps must be >= 0, got {self.round_steps}")


@register_method("imp")
class IterativeMagnitudePruning(Method):
    kind = MethodKind.PRUNE_PRETRAINED
    Hparams = IterativeHparams
    paper = "Han et al. 2015; Frankle & Carbin, The Lottery Ticket Hypothesis, ICLR 2019"

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        hp = self.hparams
        schedule = round_sparsities(ctx.sparsity, hp.rounds, hp.fraction)
        round_steps = ctx.finetune_steps if hp.round_steps is None else hp.round_steps
        masks = magnitude_masks(ctx.model, schedule[0], hp.budget)
        for sparsity in schedule[1:]:
            masks.apply(ctx.model)
            ctx.train(masks, round_steps)
            masks = magnitude_masks(ctx.model, sparsity, hp.budget)
        return masks
