"""``set``: Sparse Evolutionary Training (Mocanu et al., Nature Communications 2018).

As RigL (drop the smallest-|w| active weights on a cosine-decayed schedule) but the weights that
grow are drawn uniformly at random among the inactive ones.
"""

from __future__ import annotations

import torch

from methods.dynamic import DynamicSparseMethod
from methods.lifecycle import TrainingState
from methods.registry import register_method


@register_method("set")
class SparseEvolutionaryTraining(DynamicSparseMethod):
    paper = (
        "Mocanu et al., Scalable training of artificial neural networks with adaptive sparse "
        "connectivity inspired by network science, Nature Communications 2018"
    )

    def grow_scores(self, state: TrainingState, inactive) -> dict[str, torch.Tensor]:
        generator = state.ctx.generator
        return {
            n: torch.rand(m.shape, generator=generator).to(m.device) for n, m in inactive.items()
        }
