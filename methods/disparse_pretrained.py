"""``disparse_pretrained``: DiSparse on the trained dense model, then fine-tuning (Sun et al.,
CVPR 2022, pretrained setting).

Per-task importance on the shared encoder and that task's head; selection is disentangled
(``methods.disentangled``). Scores (``score``):

- ``magnitude``: |w|, the same for every task (the authors' choice on NYUv2 and Cityscapes,
  ``disparse_prune_pretrained_l1``); the default.
- ``grad_magnitude_sq``: (sum over scoring batches of |g_t|) * w^2 (the authors' choice on
  Taskonomy, ``disparse_prune_pretrained``).
- ``snip``: |sum over scoring batches of g_t * w|, the connection sensitivity of the static
  setting applied to the trained model (this suite's earlier default).

The per-task normalisation the authors apply to gradient scores does not change a task's top-k;
``methods.disentangled`` normalises every score the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.options import check_choice
from methods.context import PruneContext
from methods.disentangled import DisentangledSelection
from methods.lifecycle import PrunePretrained
from methods.options import ScoringOptions
from methods.registry import register_method
from methods.sanity import ScratchOptions
from methods.scoring import accumulated_gradients, connection_sensitivity, magnitude_scores

SCORES = ("magnitude", "grad_magnitude_sq", "snip")


@dataclass(frozen=True)
class DiSparsePretrainedOptions(ScratchOptions, ScoringOptions):
    score: str = field(
        default="magnitude",
        metadata={
            "help": "per-task importance: magnitude (|w|, the authors' NYUv2/Cityscapes choice), "
            "grad_magnitude_sq (sum |g_t| * w^2, their Taskonomy choice) or snip (|sum g_t * w|)"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("score", self.score, SCORES)


@register_method("disparse_pretrained")
class DiSparsePretrained(DisentangledSelection, PrunePretrained):
    Options = DiSparsePretrainedOptions
    paper = (
        "Sun et al., DiSparse: Disentangled Sparsification for Multitask Model Compression, "
        "CVPR 2022"
    )

    def task_scores(self, ctx: PruneContext, task: str) -> dict[str, torch.Tensor]:
        batches = self.options.scoring_batches
        if self.options.score == "magnitude":
            return magnitude_scores(ctx.model)
        if self.options.score == "grad_magnitude_sq":
            grads = accumulated_gradients(ctx, batches, task=task, absolute=True)
            weights = magnitude_scores(ctx.model)
            return {n: grads[n] * weights[n] ** 2 for n in grads}
        return connection_sensitivity(ctx, batches, task=task)
