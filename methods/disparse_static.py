"""``disparse_static``: DiSparse at initialisation (Sun et al., CVPR 2022).

Score per task t: |g_t * w| with g_t the gradient of task t's loss alone, summed over the scoring
batches, on the shared encoder and t's own head; selection is disentangled
(``methods.disentangled``): per-task top-k, a shared weight kept if any task keeps it, the per-task
k solved for the exact sparsity.

Two choices of the authors' code are the defaults, so ``disparse_static`` is their method:
``score_copy: xavier`` scores a copy whose prunable weights are re-drawn from Xavier-normal (the
masks then apply to the network as initialised), and ``per_batch_abs: true`` sums each batch's
|g_t * w| instead of taking |.| of the summed gradient. ``score_copy=model per_batch_abs=false``
(the suite's defaults before) scores the network itself, SNIP-style; it shows as a variant row.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch

from core.options import check_choice
from methods.context import PruneContext
from methods.disentangled import DisentangledSelection
from methods.lifecycle import PruneAtInit
from methods.masks import MaskSet, prunable_parameters
from methods.options import ScoringOptions
from methods.registry import register_method
from methods.sanity import SanityOptions
from methods.scoring import connection_sensitivity

SCORE_COPIES = ("model", "xavier")


@dataclass(frozen=True)
class DiSparseStaticOptions(SanityOptions, ScoringOptions):
    score_copy: str = field(
        default="xavier",
        metadata={
            "help": "what is scored: model (the network as initialised) or xavier (a copy with "
            "Xavier-normal weights, the authors' code)"
        },
    )
    per_batch_abs: bool = field(
        default=True,
        metadata={
            "help": "sum each batch's |g_t * w| (the authors' code) instead of |sum g_t * w|"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("score_copy", self.score_copy, SCORE_COPIES)


def xavier_copy(model: torch.nn.Module, generator: torch.Generator) -> torch.nn.Module:
    """A copy of ``model`` whose prunable weights are re-drawn from Xavier-normal."""
    work = copy.deepcopy(model)
    with torch.no_grad():
        for weight in prunable_parameters(work).values():
            draw = torch.empty(weight.shape)
            torch.nn.init.xavier_normal_(draw, generator=generator)
            weight.copy_(draw)
    return work


@register_method("disparse_static")
class DiSparseStatic(DisentangledSelection, PruneAtInit):
    Options = DiSparseStaticOptions
    paper = (
        "Sun et al., DiSparse: Disentangled Sparsification for Multitask Model Compression, "
        "CVPR 2022"
    )

    def task_scores(self, ctx: PruneContext, task: str) -> dict[str, torch.Tensor]:
        hp = self.options
        return connection_sensitivity(ctx, hp.scoring_batches, task, hp.per_batch_abs)

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        if self.options.score_copy == "xavier":
            scored = xavier_copy(ctx.model, ctx.generator)
            masks = super().make_masks(replace(ctx, model=scored))
            device = next(ctx.model.parameters()).device
            return masks.to(device)
        return super().make_masks(ctx)
