"""``dense_same_steps``: the dense network trained as long as the longest pretrained pipeline.

Pretrained methods train the dense model and then fine-tune (lth retrains twice), so they see
more optimiser steps than ``dense``. This row is the dense model given that same budget: a
pretrained method that beats ``dense`` but not this row has gained from training longer, not from
pruning. It is a reference row, not a baseline: delta-m stays measured against ``dense``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from methods.context import PruneContext
from methods.lifecycle import MethodKind, Unpruned
from methods.registry import register_method

LONGEST_PIPELINE_FINETUNES = 2  # lth with its default 2 rounds: dense + 2 x fine-tuning length


@dataclass(frozen=True)
class SameStepsOptions:
    total_steps: int | None = field(
        default=None,
        metadata={
            "help": "training steps; null: protocol.steps + 2 x protocol.finetune_steps (lth's "
            "default pipeline, the longest of the default pretrained methods)"
        },
    )

    def __post_init__(self) -> None:
        if self.total_steps is not None and self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1 or null, got {self.total_steps}")


@register_method("dense_same_steps")
class DenseSameSteps(Unpruned):
    Options = SameStepsOptions
    kind = MethodKind.DENSE
    paper = "budget reference: dense trained as long as the pretrained methods"

    def training_steps(self, ctx: PruneContext) -> int:
        if self.options.total_steps is not None:
            return self.options.total_steps
        return ctx.steps + LONGEST_PIPELINE_FINETUNES * ctx.finetune_steps
