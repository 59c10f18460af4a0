"""Sanity checks for pruning at initialisation (Frankle et al., Pruning Neural Networks at
Initialization: Why Are We Missing the Mark?, ICLR 2021).

Each check breaks one thing a prune-at-init method could be exploiting; when the method's score
survives the check, the method was only choosing how dense each layer is:
- ``shuffle``: each layer's mask permuted at random (keeps every layer's density, destroys
  which weights were chosen);
- ``reinit``: the chosen masks, but the weights re-drawn from the initialisation distribution
  (the choice may depend on the initial values it was made for);
- ``invert``: keep the weights the method ranks lowest (the complement of its selection at the
  complementary sparsity, so exactly as many weights survive).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

import torch

from core.options import check_choice
from methods.context import PruneContext
from methods.masks import MaskSet

if TYPE_CHECKING:
    from methods.lifecycle import Method

SANITY_CHECKS = ("none", "shuffle", "reinit", "invert")


@dataclass(frozen=True)
class SanityOptions:
    """Mix into a prune-at-init method's options (first among the bases); ``CHECKS`` are the
    ablations the method supports (the sweep runs only those of ``sweep.sanity_checks``)."""

    CHECKS: ClassVar[tuple[str, ...]] = SANITY_CHECKS

    sanity: str = field(
        default="none",
        metadata={
            "help": "sanity-check ablation (Frankle et al. 2021): none, shuffle (masks permuted "
            "within each layer), reinit (weights re-drawn after pruning) or invert (keep the "
            "lowest-ranked weights)"
        },
    )

    def __post_init__(self) -> None:
        check_choice("sanity", self.sanity, self.CHECKS)
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()


def shuffled_within_layers(masks: MaskSet, generator: torch.Generator) -> MaskSet:
    """Each tensor's mask randomly permuted: same count per layer, random positions."""
    permuted = {}
    for name, mask in masks.masks.items():
        order = torch.randperm(mask.numel(), generator=generator).to(mask.device)
        permuted[name] = mask.flatten()[order].view_as(mask)
    return MaskSet(permuted, masks.owners)


def complement(masks: MaskSet) -> MaskSet:
    return MaskSet({n: ~m for n, m in masks.masks.items()}, masks.owners)


def ablated_masks(method: Method, ctx: PruneContext, check: str) -> MaskSet:
    """``method``'s masks at ``ctx.sparsity`` under sanity check ``check``; ``reinit`` also
    re-draws ``ctx.model``'s weights."""
    if check == "invert":
        return complement(method.make_masks(replace(ctx, sparsity=1.0 - ctx.sparsity)))
    masks = method.make_masks(ctx)
    if check == "shuffle":
        return shuffled_within_layers(masks, ctx.generator)
    if check == "reinit":
        ctx.model.load_state_dict(ctx.fresh_init())
    return masks
