"""``disparse_pretrained``: DiSparse on the trained dense model, then fine-tuning (Sun et al.,
CVPR 2022, pretrained setting).

Per-task importance on the shared encoder and that task's head, either |w| or |g_t * w| summed
over the scoring batches (the two scores the authors use), normalised per task, per-task top-k,
a shared weight kept if any task keeps it, per-task k solved for the exact sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from methods.context import PruneContext
from methods.disparse_static import disentangled_masks, task_connection_sensitivity
from methods.hparams import ScoringHparams
from methods.masks import MaskSet, prunable_parameters
from methods.registry import Method, MethodKind, register_method

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


def magnitude_score(ctx: PruneContext, task: str):
    return {n: p.detach().abs() for n, p in prunable_parameters(ctx.model).items()}


@register_method("disparse_pretrained")
class DiSparsePretrained(Method):
    kind = MethodKind.PRUNE_PRETRAINED
    Hparams = DiSparsePretrainedHparams
    paper = (
        "Sun et al., DiSparse: Disentangled Sparsification for Multitask Model Compression, "
        "CVPR 2022"
    )

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        if self.hparams.score == "magnitude":
            score = magnitude_score
        else:
            score = task_connection_sensitivity(self.hparams.scoring_batches)
        return disentangled_masks(ctx, score, self.hparams.budget)
