"""``rigl``: Rigging the Lottery (Evci et al., ICML 2020).

Dynamic sparse training from an ERK random layout: every delta_t steps drop the smallest-|w|
active weights and grow the inactive weights with the largest |dense gradient| of the summed
multitask loss, the update fraction decaying by cosine from alpha to zero at t_end.
"""

from __future__ import annotations

import torch

from methods.dynamic import DynamicSparseMethod, dense_gradients
from methods.lifecycle import TrainingState
from methods.registry import register_method


@register_method("rigl")
class RigL(DynamicSparseMethod):
    paper = "Evci et al., Rigging the Lottery: Making All Tickets Winners, ICML 2020"

    def grow_scores(self, state: TrainingState, inactive) -> dict[str, torch.Tensor]:
        return {n: g.abs() for n, g in dense_gradients(state).items()}
