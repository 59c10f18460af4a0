"""What a method does over a cell's life: the hooks the runner calls, in order, for every method,
and the defaults each kind of method gets.

1. ``start_from``: the registered, unpruned method whose trained model (same setting and seed)
   the cell starts from (loaded by ``load_start``); ``None`` starts from a fresh initialisation.
2. ``initial_masks(ctx)``: which weights survive when training starts: ``make_masks(ctx)``,
   by default the top-k of ``scores(ctx)`` under the method's layer budget at ``ctx.sparsity``
   (prune-at-init methods add their ``sanity`` ablation, ``methods.sanity``).
3. ``training_steps(ctx)`` and ``training_lr(ctx)``: how many steps the runner then trains, and
   at which learning rate (``None``: the protocol's training lr).
4. ``on_backward(state)``: after every backward pass, before the optimiser step. Methods whose
   masks change during training change them here (``state.masks.set_mask``).
5. ``finish(ctx, masks)``: after the last step, before the final evaluation.

``keeps_snapshots``: the runner saves the model at ``protocol.snapshot_steps`` (what lottery-ticket
rewinding reads back). The runner never asks which kind a method is; ``kind`` only names the
leaderboard's section of its rows and what ``sweep.kinds`` selects. A new lifecycle is a
subclass that overrides the hooks it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import torch

from core.tasks import TaskSpec
from methods.budgets import top_k_masks
from methods.context import PruneContext, rebatched
from methods.masks import MaskSet
from methods.networks import ModelParts, MultiTaskNet
from methods.sanity import ablated_masks


class MethodKind(str, Enum):
    """When a method acts: the one word the configs (``sweep.kinds``), the runs' ``kind``
    tag and the leaderboard use. Each kind has one base class below. In the leaderboard's
    order: dense first (later cells start from its model)."""

    DENSE = "dense"  # no pruning: the baseline
    STATIC = "static"  # masks chosen at initialisation, then full training (PruneAtInit)
    DYNAMIC = "dynamic"  # masks change during training (PruneDuringTraining)
    PRETRAINED = "pretrained"  # masks chosen on the trained dense model, fine-tune
    STRUCTURED = "structured"  # channels removed from the trained dense model, fine-tune
    ARCHITECTURE = "architecture"  # a dedicated multitask network, trained dense


@dataclass
class TrainingState:
    """What ``on_backward`` may read and change at one training step."""

    ctx: PruneContext
    masks: MaskSet
    optimizer: torch.optim.Optimizer
    batch: dict[str, torch.Tensor]
    step: int  # index of the step being taken, from 0
    total_steps: int  # length of this training run


class Method:
    """Base class. Subclass the base of your method's kind and override what differs."""

    name: ClassVar[str] = ""
    kind: ClassVar[MethodKind]
    Options: ClassVar[type]
    paper: ClassVar[str] = ""
    # Another registered method whose cells this one shares (same network and training): the
    # sweep runs that method's cell instead and the leaderboard shows the row under both names.
    same_cell_as: ClassVar[str | None] = None
    start_from: str | None = None  # a class constant, or a property that reads the options
    prunes: ClassVar[bool] = True  # runs at every swept sparsity (else once, at sparsity 0)
    keeps_snapshots: ClassVar[bool] = False
    # Reads features inside encoder stages (MTAN): the model must keep the contract's stage rule.
    reads_inside_stages: ClassVar[bool] = False
    # Fine-tunes a model pruned after training: the runner logs its test metrics at
    # ``protocol.readout_steps`` of that fine-tuning (how criteria differ before it evens them).
    reads_out_after_pruning: ClassVar[bool] = False

    def __init__(self, options: Any):
        self.options = options

    def build_network(self, parts: ModelParts, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        """The network this method trains: the hard-sharing one unless it is an architecture."""
        return parts.hard_sharing(tasks)

    def check_protocol(self, snapshot_steps: tuple[int, ...]) -> None:
        """Raise ``ValueError`` naming the options when this method cannot run under a protocol
        that keeps dense snapshots at ``snapshot_steps`` (checked before a sweep starts)."""

    def load_start(self, model: MultiTaskNet, state: dict[str, torch.Tensor]) -> None:
        """Load the ``start_from`` run's trained weights into this cell's network."""
        model.load_state_dict(state)

    def scores(self, ctx: PruneContext) -> dict[str, torch.Tensor]:
        """Importance of every prunable weight (the higher, the more it is kept)."""
        raise NotImplementedError(
            f"method {self.name!r} must define scores(ctx) or override make_masks(ctx)"
        )

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        return top_k_masks(ctx.model, self.scores(ctx), ctx.sparsity, self.options.budget)

    def initial_masks(self, ctx: PruneContext) -> MaskSet:
        """The masks training starts with (what the runner calls)."""
        return self.make_masks(self.scoring_context(ctx))

    def scoring_context(self, ctx: PruneContext) -> PruneContext:
        """``ctx`` with the scoring batch size of the method's ``scoring_batch_size`` option
        (``methods.options.ScoringBatchOptions``), if it has one."""
        return rebatched(ctx, getattr(self.options, "scoring_batch_size", None))

    def training_steps(self, ctx: PruneContext) -> int:
        return ctx.steps

    def training_lr(self, ctx: PruneContext) -> float | None:
        return None

    def on_backward(self, state: TrainingState) -> None:
        """Called after every backward pass, before the optimiser step."""

    def finish(self, ctx: PruneContext, masks: MaskSet) -> None:
        """Called after the last training step, before the final evaluation."""


class Unpruned(Method):
    """Trains every weight: no masks, one cell per seed at sparsity 0."""

    prunes = False

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        return MaskSet.dense(ctx.model)


class DenseTraining(Unpruned):
    """The dense baseline; its snapshots are what lottery tickets rewind to."""

    kind = MethodKind.DENSE
    keeps_snapshots = True


class Architecture(Unpruned):
    """A dedicated multitask network (override ``build_network``), trained dense."""

    kind = MethodKind.ARCHITECTURE


class PruneAtInit(Method):
    """Masks chosen once on the freshly initialised network, then full training."""

    kind = MethodKind.STATIC

    def initial_masks(self, ctx: PruneContext) -> MaskSet:
        """``make_masks`` under the method's ``sanity`` option (``SanityOptions``), if any."""
        check = getattr(self.options, "sanity", "none")
        return ablated_masks(self, self.scoring_context(ctx), check)


class PrunePretrained(Method):
    """Masks chosen on the trained dense model, then fine-tuning."""

    kind = MethodKind.PRETRAINED
    start_from = "dense"
    reads_out_after_pruning = True

    def training_steps(self, ctx: PruneContext) -> int:
        return ctx.finetune_steps

    def training_lr(self, ctx: PruneContext) -> float | None:
        return ctx.finetune_lr


class PruneDuringTraining(Method):
    """Masks change while the network trains (dynamic sparse training, gradual pruning)."""

    kind = MethodKind.DYNAMIC


AfterBackward = Callable[[int, torch.optim.Optimizer, dict[str, torch.Tensor]], None]


def backward_hook(
    method: Method, ctx: PruneContext, masks: MaskSet, total_steps: int
) -> AfterBackward:
    """The training loop's after-backward callback that forwards to ``method.on_backward``."""

    def hook(step: int, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> None:
        method.on_backward(TrainingState(ctx, masks, optimizer, batch, step, total_steps))

    return hook
