"""``disparse_pretrained``: DiSparse on the trained dense model, then fine-tuning (Sun et al.,
CVPR 2022, pretrained setting).

Per-task importance on the shared encoder and that task's head, either |w| or |g_t * w| summed
over the scoring batches (the two scores the authors use); selection is disentangled
(``methods.disentangled``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from methods.context import PruneContext
from methods.disentangled import DisentangledSelection
from methods.hparams import ScoringHparams
from methods.lifecycle import PrunePretrained
from methods.registry import register_method
from methods.scoring import connection_sensitivity, magnitude_scores

SCORES = ("snip", "magnitude")


@dataclass(frozen=True)
class DiSparsePretrainedHparams(ScoringHparams):
    score: str = field(
        default="snip",
        metadata={"help": "per-task importance: snip (|g_t * w|) or magnitude (|w|)"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, got {self.score!r}")


@register_method("disparse_pretrained")
class DiSparsePretrained(DisentangledSelection, PrunePretrained):
    Hparams = DiSparsePretrainedHparams
    paper = (
        "Sun et al., DiSparse: Disentangled Sparsification for Multitask Model Compression, "
        "CVPR 2022"
    )

    def task_scores(self, ctx: PruneContext, task: str) -> dict[str, torch.Tensor]:
        if self.hparams.score == "magnitude":
            return magnitude_scores(ctx.model)
        return connection_sensitivity(ctx, self.hparams.scoring_batches, task=task)
