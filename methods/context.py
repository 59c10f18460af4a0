"""What a method sees when it chooses masks: the model, the tasks, batches and training."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from core.tasks import TaskSpec
from methods.networks.base import MultiTaskNet

if TYPE_CHECKING:
    from methods.masks import MaskSet

Batch = dict[str, torch.Tensor]


def _no_training(masks: MaskSet, steps: int, lr: float | None = None) -> None:
    raise RuntimeError("this context cannot train; multi-round methods need the runner's context")


def _no_fresh_init() -> dict[str, torch.Tensor]:
    raise RuntimeError("this context cannot re-draw the initial weights; use the runner's context")


def _no_snapshots(step: int) -> dict[str, torch.Tensor]:
    raise RuntimeError("no dense-run snapshots here; rewinding needs a pretrained-kind run")


@dataclass
class PruneContext:
    model: MultiTaskNet
    tasks: tuple[TaskSpec, ...]
    loss_weights: dict[str, float]
    sparsity: float
    batches: Callable[[int], Iterator[Batch]]  # n -> the same first n training batches each call
    generator: torch.Generator  # seeded; every random choice of a method draws from it
    # Train ``model`` under masks for n steps at a learning rate (None: the protocol's training
    # lr); rounds of IMP / lottery tickets.
    train: Callable[[MaskSet, int, float | None], None] = _no_training
    # State dict of the dense run at training step k (lottery-ticket rewinding).
    snapshot: Callable[[int], dict[str, torch.Tensor]] = _no_snapshots
    steps: int = 0  # the protocol's training length from scratch
    finetune_steps: int = 0  # the protocol's fine-tuning length after pruning a trained model
    finetune_lr: float | None = None  # the protocol's fine-tuning lr (None: its training lr)
    snapshot_steps: tuple[int, ...] = ()  # steps at which ``snapshot`` has the dense state
    # A new draw of the network's initial weights (the ``reinit`` sanity check).
    fresh_init: Callable[[], dict[str, torch.Tensor]] = _no_fresh_init


def rebatched(ctx: PruneContext, batch_size: int | None) -> PruneContext:
    """``ctx`` whose ``batches(n)`` gives n batches of ``batch_size`` images, cut in order from
    the same training batches (None: ``ctx`` unchanged)."""
    if batch_size is None:
        return ctx
    original = ctx.batches

    def batches(n: int) -> Iterator[Batch]:
        needed = n * batch_size
        per_batch = len(next(original(1))["image"])
        pieces = list(original(math.ceil(needed / per_batch)))
        merged = {k: torch.cat([piece[k] for piece in pieces]) for k in pieces[0]}
        cut = range(0, needed, batch_size)
        return iter([{k: v[i : i + batch_size] for k, v in merged.items()} for i in cut])

    return replace(ctx, batches=batches)
