"""``disparse_static``: DiSparse at initialisation (Sun et al., CVPR 2022).

Score per task t: |g_t * w| with g_t the gradient of task t's loss alone, summed over the scoring
batches, on the shared encoder and t's own head; selection is disentangled
(``methods.disentangled``): per-task top-k, a shared weight kept if any task keeps it, the per-task
k solved for the exact sparsity.
"""

from __future__ import annotations

import torch

from methods.context import PruneContext
from methods.disentangled import DisentangledSelection
from methods.hparams import ScoringHparams
from methods.lifecycle import PruneAtInit
from methods.registry import register_method
from methods.scoring import connection_sensitivity


@register_method("disparse_static")
class DiSparseStatic(DisentangledSelection, PruneAtInit):
    Hparams = ScoringHparams
    paper = (
        "Sun et al., DiSparse: Disentangled Sparsification for Multitask Model Compression, "
        "CVPR 2022"
    )

    def task_scores(self, ctx: PruneContext, task: str) -> dict[str, torch.Tensor]:
        return connection_sensitivity(ctx, self.hparams.scoring_batches, task=task)
