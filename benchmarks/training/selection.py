"""Which weights a cell reports: the last step's, or (the DiSparse authors' protocol) those with
the lowest test loss, checked every ``protocol.selection_every`` steps. The latter selects on the
test set, so it is offered only for reproducing the paper and every row says which one it used."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

SELECTIONS = ("last", "best_test_loss")


class BestCheckpoint:
    """Keeps a copy of the model's state whenever the measured loss is the lowest so far, among
    the states ``eligible`` accepts (for a method that prunes while training: only states already
    at the target sparsity, so the reported network is never denser than the target)."""

    def __init__(
        self,
        model: torch.nn.Module,
        measure: Callable[[], float],
        every: int,
        eligible: Callable[[], bool] = lambda: True,
    ):
        self.model, self.measure, self.every, self.eligible = model, measure, every, eligible
        self.best_loss = math.inf
        self.best_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def observe(self, step: int, final: bool) -> None:
        """Called after training step ``step``; measures every ``every`` steps and at the end."""
        if (step % self.every and not final) or not self.eligible():
            return
        loss = self.measure()
        if loss < self.best_loss:
            self.best_loss, self.best_step = loss, step
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def state_dict(self) -> dict:
        """What a resumed cell needs to keep selecting where this one stopped."""
        return {"loss": self.best_loss, "step": self.best_step, "state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best_loss, self.best_step = state["loss"], state["step"]
        self.best_state = state["state"]

    def restore(self) -> int:
        """Load the best state into the model; returns the step it was taken at."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.best_step
