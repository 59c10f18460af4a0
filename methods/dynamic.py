"""Dynamic sparse training shared by ``rigl``, ``set`` and ``disparse_dynamic``.

The layout starts random under the layer budget (ERK by default, as RigL). Every ``delta_t``
steps until ``t_end`` (a fraction of training) each layer drops its ``n`` smallest-magnitude
active weights and grows ``n`` inactive ones, so every layer's density stays constant;
n = round(fraction(t) * active), with the cosine-decayed update fraction of Evci et al. (2020):

    fraction(t) = alpha / 2 * (1 + cos(pi * t / t_end))   for t < t_end, else 0

Grown weights that were inactive start at zero with their optimiser state reset (a weight dropped
and grown back in the same update keeps both, as in RigL); which inactive weights grow is what
each method decides (``grow_scores``: the higher, the sooner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from methods.budgets import top_k_masks
from methods.context import PruneContext
from methods.lifecycle import PruneDuringTraining, TrainingState
from methods.masks import MaskSet, prunable_parameters
from methods.options import PruningOptions
from methods.schedules import update_fraction
from methods.scoring import random_scores


@dataclass(frozen=True)
class DynamicOptions(PruningOptions):
    budget: str = field(default="erk", metadata={"help": "initial layout: erk, uniform or global"})
    alpha: float = field(default=0.3, metadata={"help": "initial update fraction"})
    delta_t: int = field(default=16, metadata={"help": "steps between mask updates"})
    t_end: float = field(
        default=0.75, metadata={"help": "updates stop at this fraction of the training steps"}
    )
    erk_power: float = field(
        default=1.0,
        metadata={"help": "ERK density ~ ((sum of dims) / (product of dims)) ** erk_power"},
    )
    dense_first_layer: bool = field(
        default=False,
        metadata={"help": "keep the first prunable layer dense (the others solved for the target)"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.delta_t < 1:
            raise ValueError(f"delta_t must be >= 1, got {self.delta_t}")
        if not 0.0 < self.t_end <= 1.0:
            raise ValueError(f"t_end must be in (0, 1], got {self.t_end}")


def drop_and_grow(
    weight: torch.Tensor, mask: torch.Tensor, grow_score: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Drop the ``count`` smallest-|w| active weights, grow the ``count`` best-scored inactive
    ones (a just-dropped weight may grow back). Returns (new mask, dropped, grown)."""
    flat_mask = mask.flatten()
    magnitude = torch.where(flat_mask, weight.detach().abs().flatten(), math.inf)
    dropped = torch.zeros_like(flat_mask)
    dropped[torch.topk(magnitude, count, largest=False).indices] = True
    after_drop = flat_mask & ~dropped
    candidates = torch.where(after_drop, -math.inf, grow_score.flatten().to(magnitude.dtype))
    grown = torch.zeros_like(flat_mask)
    grown[torch.topk(candidates, count).indices] = True
    return (after_drop | grown).view_as(mask), dropped.view_as(mask), grown.view_as(mask)


def reset_optimizer_state(optimizer: torch.optim.Optimizer, param, where: torch.Tensor) -> None:
    """Zero the per-weight optimiser state (Adam moments, momentum) of the ``where`` entries."""
    for value in optimizer.state.get(param, {}).values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value[where] = 0


@torch.no_grad()
def update_layer(
    param: torch.Tensor,
    mask: torch.Tensor,
    grow_score: torch.Tensor,
    count: int,
    optimizer: torch.optim.Optimizer,
) -> torch.Tensor:
    """One layer's drop-and-grow; returns the new mask. As in RigL, only weights that were
    inactive before this update start at zero with a fresh optimiser state: a weight dropped and
    grown back in the same update keeps its value and its moments."""
    new_mask, _, grown = drop_and_grow(param, mask, grow_score, count)
    revived = grown & ~mask
    param[revived] = 0.0
    reset_optimizer_state(optimizer, param, revived)
    return new_mask


class DynamicSparseMethod(PruneDuringTraining):
    """Base of the dynamic methods: subclasses only say how inactive weights are ranked."""

    Options = DynamicOptions

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        """A random layout under the budget (with the ERK power and dense first layer asked)."""
        hp = self.options
        dense = [next(iter(prunable_parameters(ctx.model)))] if hp.dense_first_layer else []
        return top_k_masks(
            ctx.model, random_scores(ctx), ctx.sparsity, hp.budget, hp.erk_power, dense
        )

    def grow_scores(
        self, state: TrainingState, inactive: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_backward(self, state: TrainingState) -> None:
        t_end = int(self.options.t_end * state.total_steps)
        if state.step == 0 or state.step % self.options.delta_t != 0:
            return
        fraction = update_fraction(state.step, self.options.alpha, t_end)
        if fraction <= 0:
            return
        params = prunable_parameters(state.ctx.model)
        counts = {n: round(fraction * int(m.sum())) for n, m in state.masks.masks.items()}
        inactive = {n: ~m for n, m in state.masks.masks.items()}
        scores = self.grow_scores(state, inactive)
        with torch.no_grad():
            for name, count in counts.items():
                if count == 0:
                    continue
                new_mask = update_layer(
                    params[name], state.masks.masks[name], scores[name], count, state.optimizer
                )
                state.masks.set_mask(name, new_mask)


def dense_gradients(state: TrainingState) -> dict[str, torch.Tensor]:
    """The gradient of the training loss for every weight, pruned ones included (they are real
    zeros in the network, so backward gives their gradient too)."""
    params = prunable_parameters(state.ctx.model)
    return {
        n: p.grad.detach() if p.grad is not None else torch.zeros_like(p) for n, p in params.items()
    }
