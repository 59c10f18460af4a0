"""The structured kind: channels removed from the trained dense model, then fine-tuning.

A method of this kind scores channels (``channel_scores``) or chooses them itself
(``select``); ``make_masks`` removes them from the network in place (``methods.channel_graph``),
so the fine-tuned model is physically smaller, and returns all-ones masks over what is left
(they carry the unpruned sizes, so sparsity counts the removed weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from methods.channel_graph import ChannelGraph
from methods.channel_selection import Removal, ranked_removal, shuffled_removal
from methods.context import PruneContext
from methods.lifecycle import MethodKind, PrunePretrained
from methods.masks import MaskSet
from methods.options import ScoringBatchOptions
from methods.sanity import SCRATCH_CONTROLS, SanityOptions, ScratchOptions

# A structured method's sparsity is met to within about one channel's weights (the contract
# tests hold it to a point).
CHANNEL_TOLERANCE = 0.01


@dataclass(frozen=True)
class ChannelOptions:
    round_to: int = field(
        default=1,
        metadata={"help": "kept channels per group are a multiple of this (8 in GPU presets)"},
    )

    def __post_init__(self) -> None:
        if self.round_to < 1:
            raise ValueError(f"round_to must be >= 1, got {self.round_to}")


@dataclass(frozen=True)
class ChannelSanityOptions(SanityOptions):
    """The matched random control of a channel criterion: ``sanity=shuffle`` keeps the number
    of channels the criterion removes from every group and draws which ones at random (what
    ``shuffle`` does for weight masks)."""

    CHECKS: ClassVar[tuple[str, ...]] = ("none", "shuffle", *SCRATCH_CONTROLS)


@dataclass(frozen=True)
class RandomChannelOptions(ScratchOptions, ChannelOptions):
    """Channel rounding, and the scratch controls (random channels need no random control)."""


@dataclass(frozen=True)
class ScoredChannelOptions(ChannelSanityOptions, ChannelOptions):
    """Channel rounding, and the matched random control."""


@dataclass(frozen=True)
class ChannelScoringOptions(ChannelSanityOptions, ScoringBatchOptions, ChannelOptions):
    """Channel rounding, the batches scores are computed on, and the matched random control."""


class PruneChannels(PrunePretrained):
    """Channels removed from the trained dense model, then fine-tuning."""

    kind = MethodKind.STRUCTURED

    def channel_scores(self, ctx: PruneContext, graph: ChannelGraph) -> dict[str, torch.Tensor]:
        """Importance of each channel of each group (the higher, the more it is kept)."""
        raise NotImplementedError(
            f"method {self.name!r} must define channel_scores(ctx, graph) or select(ctx, graph)"
        )

    def select(self, ctx: PruneContext, graph: ChannelGraph) -> Removal:
        """The channels to remove: by default every group loses the same fraction, its
        lowest-scored channels first, hitting ``ctx.sparsity``."""
        scores = self.channel_scores(ctx, graph)
        return ranked_removal(graph, scores, ctx.sparsity, self.options.round_to)

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        example = next(ctx.batches(1))["image"][:1]
        graph = ChannelGraph(ctx.model, example)
        removal = self.select(ctx, graph)
        if getattr(self.options, "sanity", "none") == "shuffle":
            removal = shuffled_removal(graph, removal, ctx.generator)
        graph.prune(removal)
        masks = MaskSet.dense(ctx.model)
        self.check_reached(masks.sparsity(), ctx.sparsity)
        return masks

    def check_reached(self, reached: float, target: float) -> None:
        """Fail the cell, with the reason, when the channel granularity kept it from its target:
        its row would otherwise be ranked at a sparsity it does not have."""
        if abs(reached - target) > CHANNEL_TOLERANCE:
            raise ValueError(
                f"{self.name} removed channels down to sparsity {reached:.4f}, not the "
                f"{target:.4f} asked for (tolerance {CHANNEL_TOLERANCE}): with round_to="
                f"{self.options.round_to} the groups' channel counts cannot get there. Lower "
                "method.round_to, widen the model, or choose another sparsity"
            )
