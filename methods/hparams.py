"""Hyperparameters several methods share (each method's own dataclass extends these)."""

from __future__ import annotations

from dataclasses import dataclass, field

from methods.budgets import check_budget


@dataclass(frozen=True)
class NoHparams:
    """For methods without options."""


@dataclass(frozen=True)
class PruningHparams:
    budget: str = field(
        default="global",
        metadata={"help": "layer budget: global (one threshold), uniform or erk"},
    )

    def __post_init__(self) -> None:
        check_budget(self.budget)


@dataclass(frozen=True)
class ScoringHparams(PruningHparams):
    scoring_batches: int = field(
        default=4, metadata={"help": "training batches whose gradients are summed for the scores"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scoring_batches < 1:
            raise ValueError(f"scoring_batches must be >= 1, got {self.scoring_batches}")
