"""What cross-stitch and NDDR-CNN share: per-task encoders fused after every stage, started
either from scratch (the default: same training budget as dense) or, as Vandenhende et al. train
them, from the trained ``single_task`` networks of the same setting and seed, with the fusion
units at a higher learning rate (100x in their code)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.options import check_choice
from methods.lifecycle import Architecture
from methods.networks import MultiTaskNet

INITS = ("scratch", "single_task")
FUSION_PREFIX = "fusions."


@dataclass(frozen=True)
class FusionOptions:
    init: str = field(
        default="scratch",
        metadata={
            "help": "scratch (fresh weights, dense's budget) or single_task (start from the "
            "trained single_task cell of the same setting and seed, as Vandenhende et al.)"
        },
    )
    fusion_lr_multiplier: float = field(
        default=1.0,
        metadata={"help": "learning rate of the fusion units / the network's (references: 100)"},
    )

    def __post_init__(self) -> None:
        check_choice("init", self.init, INITS)
        if self.fusion_lr_multiplier <= 0:
            raise ValueError(f"fusion_lr_multiplier must be > 0, got {self.fusion_lr_multiplier}")


class FusedTaskEncoders(Architecture):
    """Base of architectures built as ``TaskEncodersNet`` with fusion modules."""

    @property
    def start_from(self) -> str | None:  # type: ignore[override]
        return "single_task" if self.options.init == "single_task" else None

    def with_fusion_lr(self, model: MultiTaskNet) -> MultiTaskNet:
        if self.options.fusion_lr_multiplier != 1.0:
            model.lr_multipliers = {FUSION_PREFIX: self.options.fusion_lr_multiplier}
        return model

    def load_start(self, model: MultiTaskNet, state: dict[str, torch.Tensor]) -> None:
        """The single-task encoders and heads; the fusion units keep their initialisation."""
        advice = "were both built with the same model options?"
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as error:  # shapes differ
            detail = str(error).splitlines()[1].strip()
            raise ValueError(
                f"the single_task checkpoint does not fit {self.name}: {detail}; {advice}"
            ) from None
        unfused = [k for k in missing if not k.startswith(FUSION_PREFIX)]
        if unfused or unexpected:
            raise ValueError(
                f"the single_task checkpoint does not fit {self.name}: missing {unfused[:3]}, "
                f"unexpected {unexpected[:3]}; {advice}"
            )
