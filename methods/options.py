"""Options several methods share (each method's own options dataclass extends these)."""

from __future__ import annotations

from dataclasses import dataclass, field

from methods.budgets import check_budget
from methods.sanity import ScratchOptions


@dataclass(frozen=True)
class NoOptions:
    """For methods without options."""


@dataclass(frozen=True)
class PruningOptions:
    budget: str = field(
        default="global",
        metadata={"help": "layer budget: global (one threshold), uniform or erk"},
    )

    def __post_init__(self) -> None:
        check_budget(self.budget)


@dataclass(frozen=True)
class PretrainedPruningOptions(ScratchOptions, PruningOptions):
    """The layer budget, and the scratch controls of a method that prunes the trained model."""


@dataclass(frozen=True)
class ScoringBatchOptions:
    """How many training batches a method's scores sum gradients over, and of what size."""

    scoring_batches: int = field(
        default=16, metadata={"help": "training batches whose gradients are summed for the scores"}
    )
    scoring_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "images per scoring batch; null: protocol.batch_size (the DiSparse authors "
            "score Taskonomy on batches of 4)"
        },
    )

    def __post_init__(self) -> None:
        later = getattr(super(), "__post_init__", None)
        if later is not None:
            later()
        if self.scoring_batches < 1:
            raise ValueError(f"scoring_batches must be >= 1, got {self.scoring_batches}")
        if self.scoring_batch_size is not None and self.scoring_batch_size < 1:
            raise ValueError(
                f"scoring_batch_size must be >= 1 or null, got {self.scoring_batch_size}"
            )


@dataclass(frozen=True)
class ScoringOptions(ScoringBatchOptions, PruningOptions):
    """The layer budget, and the batches scores are computed on."""


@dataclass(frozen=True)
class IterativeOptions(ScratchOptions, PruningOptions):
    """Rounds of magnitude pruning from the trained dense model (``imp``, ``lth``)."""

    rounds: int = field(default=3, metadata={"help": "pruning rounds (ignored if fraction is set)"})
    fraction: float | None = field(
        default=None,
        metadata={
            "help": "fraction of the remaining weights removed per round; null: solved "
            "from rounds so the last round hits the target"
        },
    )
    round_steps: int | None = field(
        default=None,
        metadata={"help": "training steps after each intermediate round; null: fine-tune steps"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.fraction is not None and not 0.0 < self.fraction < 1.0:
            raise ValueError(
                f"fraction must be in (0, 1) (of the remaining weights per round) or null, got "
                f"{self.fraction}"
            )
        if self.round_steps is not None and self.round_steps < 0:
            raise ValueError(f"round_steps must be >= 0, got {self.round_steps}")

    def steps_per_round(self, finetune_steps: int) -> int:
        return finetune_steps if self.round_steps is None else self.round_steps
