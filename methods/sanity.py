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

A method that starts from the trained dense model has the scratch controls of Liu et al.
(Rethinking the Value of Network Pruning, ICLR 2019) instead: its pruned network (mask or
smaller architecture) re-initialised and trained from scratch, for as many steps as dense
(``scratch_e``) or for the training FLOPs of the method's whole pipeline (``scratch_b``); the
cell runner does it after the method finishes (``benchmarks.cells.scratch``).
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

PRUNE_AT_INIT_CHECKS = ("none", "shuffle", "reinit", "invert")
SCRATCH_CONTROLS = ("scratch_e", "scratch_b")
SANITY_CHECKS = (*PRUNE_AT_INIT_CHECKS, *SCRATCH_CONTROLS)


@dataclass(frozen=True)
class SanityOptions:
    """Mix into a prune-at-init method's options (first among the bases); ``CHECKS`` are the
    ablations the method supports (the sweep runs only those of ``sweep.sanity_checks``)."""

    CHECKS: ClassVar[tuple[str, ...]] = PRUNE_AT_INIT_CHECKS

    sanity: str = field(
        default="none",
        metadata={
            "help": "ablation: none; for prune-at-init methods (Frankle et al. 2021) shuffle "
            "(masks permuted within each layer), reinit (weights re-drawn after pruning) or "
            "invert (keep the lowest-ranked weights); for methods that start from the trained "
            "dense model (Liu et al. 2019) scratch_e (the pruned network re-initialised and "
            "trained as many steps as dense) or scratch_b (as many training FLOPs as the "
            "method's whole pipeline, at most twice dense's steps); channel criteria also "
            "shuffle (as many channels per group, drawn at random)"
        },
    )

    def __post_init__(self) -> None:
        check_choice("sanity", self.sanity, self.CHECKS)
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()


@dataclass(frozen=True)
class ScratchOptions(SanityOptions):
    """Mix into the options of a method that starts from the trained dense model: its scratch
    controls."""

    CHECKS: ClassVar[tuple[str, ...]] = ("none", *SCRATCH_CONTROLS)


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
