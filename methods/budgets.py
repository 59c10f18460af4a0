"""Layer budgets: how a global sparsity is spread over layers, and top-k selection under it.

- ``global``: one threshold over all tensors (the k highest scores anywhere survive).
- ``uniform``: every layer keeps the same fraction.
- ``erk``: Erdos-Renyi-Kernel (Evci et al. 2020): layer density proportional to
  (sum of the tensor's dimensions) / (product of its dimensions), layers that would exceed
  density 1 are kept dense and the rest re-solved.

Every budget keeps exactly ``round((1 - sparsity) * total)`` weights, so the achieved sparsity is
the requested one up to one weight.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from methods.masks import MaskSet, owners_of

BUDGETS = ("global", "uniform", "erk")


def check_budget(budget: str) -> None:
    if budget not in BUDGETS:
        raise ValueError(f"unknown layer budget {budget!r}; choose one of {', '.join(BUDGETS)}")


def erk_densities(
    shapes: dict[str, tuple[int, ...]],
    density: float,
    power: float = 1.0,
    dense_layers: Iterable[str] = (),
) -> dict[str, float]:
    """Per-layer densities whose weighted mean is ``density`` (RigL's ERK with saturation):
    proportional to ((sum of dims) / (product of dims)) ** ``power``; ``dense_layers`` are kept
    dense and the others solved so the overall density stays exact."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: (sum(s) / sizes[n]) ** power for n, s in shapes.items()}
    dense: set[str] = set(dense_layers)
    while True:
        budget = density * sum(sizes.values()) - sum(sizes[n] for n in dense)
        divisor = sum(raw[n] * sizes[n] for n in shapes if n not in dense)
        if divisor == 0:
            return {n: 1.0 for n in shapes}
        scale = budget / divisor
        saturated = {n for n in shapes if n not in dense and scale * raw[n] > 1.0}
        if not saturated:
            return {n: 1.0 if n in dense else scale * raw[n] for n in shapes}
        dense |= saturated


def _round_counts(ideal: dict[str, float], sizes: dict[str, int], target: int) -> dict[str, int]:
    """Integer keep counts close to ``ideal`` that sum exactly to ``target`` (largest remainder)."""
    counts = {n: min(math.floor(v), sizes[n]) for n, v in ideal.items()}
    remainder = target - sum(counts.values())
    order = sorted(ideal, key=lambda n: ideal[n] - math.floor(ideal[n]), reverse=True)
    while remainder > 0:
        progressed = False
        for name in order:
            if remainder == 0:
                break
            if counts[name] < sizes[name]:
                counts[name] += 1
                remainder -= 1
                progressed = True
        if not progressed:
            break
    return counts


def layer_keep_counts(
    shapes: dict[str, tuple[int, ...]],
    sparsity: float,
    budget: str,
    erk_power: float = 1.0,
    dense_layers: Iterable[str] = (),
) -> dict[str, int]:
    """How many weights each layer keeps under a layerwise budget (``uniform`` or ``erk``)."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    target = round((1.0 - sparsity) * sum(sizes.values()))
    if budget == "uniform":
        if dense_layers:
            raise ValueError("dense layers need the erk or global budget, not uniform")
        densities = {n: 1.0 - sparsity for n in shapes}
    elif budget == "erk":
        densities = erk_densities(shapes, 1.0 - sparsity, erk_power, dense_layers)
    else:
        raise ValueError(f"layer_keep_counts needs a layerwise budget, got {budget!r}")
    return _round_counts({n: densities[n] * sizes[n] for n in shapes}, sizes, target)


def _top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if k > 0:
        mask[torch.topk(scores.flatten(), k, sorted=False).indices] = True
    return mask.view_as(scores)


def masks_from_scores(
    scores: dict[str, torch.Tensor],
    sparsity: float,
    budget: str,
    erk_power: float = 1.0,
    dense_layers: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """Keep the highest-scoring weights so that exactly ``1 - sparsity`` of them survive
    (``dense_layers`` entirely, the rest under ``budget``; ``erk_power`` shapes ERK)."""
    check_budget(budget)
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    dense_layers = tuple(dense_layers)
    if budget == "global":
        scores = {
            n: torch.full_like(s, math.inf) if n in dense_layers else s for n, s in scores.items()
        }
        names = list(scores)
        flat = torch.cat([scores[n].flatten().float() for n in names])
        kept = _top_k_mask(flat, round((1.0 - sparsity) * flat.numel()))
        pieces = torch.split(kept, [scores[n].numel() for n in names])
        return {n: piece.view_as(scores[n]) for n, piece in zip(names, pieces, strict=True)}
    shapes = {n: tuple(s.shape) for n, s in scores.items()}
    counts = layer_keep_counts(shapes, sparsity, budget, erk_power, dense_layers)
    return {n: _top_k_mask(s.float(), counts[n]) for n, s in scores.items()}


def top_k_masks(
    model: torch.nn.Module,
    scores: dict[str, torch.Tensor],
    sparsity: float,
    budget: str,
    erk_power: float = 1.0,
    dense_layers: Iterable[str] = (),
) -> MaskSet:
    """The ``MaskSet`` of ``model`` keeping the highest ``scores`` under ``budget``."""
    masks = masks_from_scores(scores, sparsity, budget, erk_power, dense_layers)
    return MaskSet(masks, owners_of(model, masks))
