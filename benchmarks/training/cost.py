"""What a run's training cost: its optimiser steps and their FLOPs (the leaderboard's budget
columns, so that "beats dense" can be told apart from "trained longer").

One training step costs 3 x its forward FLOPs (backward = gradients of the inputs + of the
weights, each about one forward; the convention of Evci et al. 2020, RigL), and a forward costs
2 x the MACs of the conv/linear layers, counting only the weights the step's mask keeps. BN,
activations and the optimiser update are not counted, nor are scoring passes (SNIP's gradients,
GraSP's Hessian products): they are not optimiser steps.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from methods.masks import MaskSet
from methods.networks.complexity import weight_uses

FLOPS_PER_MAC = 2
PASSES_PER_STEP = 3  # forward + backward (two forward-sized products)


class TrainingCost:
    """Counts the steps and FLOPs of one run's training, whatever masks each step used."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], batch_size: int):
        self.layers = {  # weight name -> (uses per input, weight count)
            name: (uses, model.get_parameter(name).numel())
            for name, uses in weight_uses(model, input_shape).items()
        }
        self.batch_size = batch_size
        self.steps = 0
        self.flops = 0.0
        # (the masks object itself, its version, flops/step): holding the object, not its id,
        # so masks made after it was freed (IMP's next round) never match it by a reused id
        self._cached: tuple[MaskSet, int, float] | None = None

    def step_flops(self, masks: MaskSet) -> float:
        """FLOPs of one training step under ``masks`` (layers without a mask count in full)."""
        cached = self._cached
        if cached is None or cached[0] is not masks or cached[1] != masks.version:
            macs = sum(
                uses * (int(masks.masks[name].sum()) if name in masks.masks else count)
                for name, (uses, count) in self.layers.items()
            )
            flops = float(macs * FLOPS_PER_MAC * PASSES_PER_STEP * self.batch_size)
            self._cached = cached = (masks, masks.version, flops)
        return cached[2]

    def add_step(self, masks: MaskSet) -> None:
        self.steps += 1
        self.flops += self.step_flops(masks)

    def state_dict(self) -> dict[str, float]:
        return {"steps": self.steps, "flops": self.flops}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.steps, self.flops = int(state["steps"]), float(state["flops"])
