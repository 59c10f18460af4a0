"""``cosprune``: channels of the shared encoder pruned iteratively by the agreement of the tasks'
gradients (Garg et al., Structured Pruning for Multi-Task Deep Neural Networks, 2023; code
gargsid/MTLCosPrune, ``taylor_pruning/cosine_pruning_engine.py``).

A shared channel's score is the cosine similarity between two tasks' gradients of its filter (the
weights that produce the channel), averaged over task pairs and over ``scoring_batches`` training
batches; the channels whose tasks' gradients agree least go first, ranked across all layers, and no
layer keeps fewer than ``min_channels`` (the authors stop at 5, as the paper presets do; 1 by
default, as every structured method here, so small networks reach high sparsities). The rounds
(``rounds``) take the network from the trained dense model to the target in equal steps of sparsity,
with ``round_steps`` of training between them; the removed channels are zeroed during the rounds and
taken out of the network at the end, which the runner then fine-tunes. Task heads are not pruned
(the authors prune the backbone only; a head has one task, so no agreement to measure).

Where it departs from the authors': they accumulate the cosine over the training iterations
between two pruning steps (at the weights of each iteration) and remove a fixed number of filters
per step; here each round scores at fixed weights on its own batches and removes what takes it to
its step of sparsity. When the last round's rank order would end further from the target than the
tolerance every structured row is held to (a large channel at the crossing), it passes over the
channels too large for the gap for smaller ones ranked after them
(``methods.channel_global.extend_global_removal``). A filter that spans several convolutions (a
residual group) takes its gradient over all of them. ``sanity=shuffle`` removes, in every round, as
many channels from each group as the criterion would, drawn at random among those left.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch

from methods.channel_global import extend_global_removal
from methods.channel_graph import OUTPUTS, ChannelGraph, ChannelGroup
from methods.channel_pruning import CHANNEL_TOLERANCE, ChannelScoringOptions, PruneChannels
from methods.channel_selection import Removal
from methods.context import PruneContext
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.networks.base import SHARED
from methods.registry import register_method
from methods.scoring import multitask_loss, preserved_buffers


@dataclass(frozen=True)
class CosPruneOptions(ChannelScoringOptions):
    rounds: int = field(default=4, metadata={"help": "pruning rounds from dense to the target"})
    round_steps: int = field(
        default=60, metadata={"help": "training steps after each round but the last"}
    )
    min_channels: int = field(
        default=1,
        metadata={"help": "no layer keeps fewer channels (the authors keep 5: the paper presets)"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.round_steps < 0:
            raise ValueError(f"round_steps must be >= 0, got {self.round_steps}")
        if self.min_channels < 1:
            raise ValueError(f"min_channels must be >= 1, got {self.min_channels}")


def filter_cosines(
    group: ChannelGroup, task_gradients: dict[str, dict[str, torch.Tensor]]
) -> torch.Tensor:
    """Per channel: the cosine between two tasks' gradients of the weights producing it, averaged
    over the pairs of tasks."""
    producing = [piece for piece in group.slices if piece.dim == OUTPUTS]
    pairs = list(itertools.combinations(sorted(task_gradients), 2))
    total = torch.zeros(group.size, dtype=torch.float64)
    for first, second in pairs:
        a, b = task_gradients[first], task_gradients[second]
        dot = sum(p.channel_sums(a[p.weight] * b[p.weight], group.size) for p in producing)
        norm_a = sum(p.channel_sums(a[p.weight] ** 2, group.size) for p in producing)
        norm_b = sum(p.channel_sums(b[p.weight] ** 2, group.size) for p in producing)
        cosine = dot / ((norm_a.sqrt() + 1e-30) * (norm_b.sqrt() + 1e-30))
        total += cosine.double().cpu()
    return total / len(pairs)


def cosine_scores(
    ctx: PruneContext, groups: list[ChannelGroup], batches: int
) -> dict[str, torch.Tensor]:
    """Each group's filter cosines (``filter_cosines``), averaged over ``batches`` batches."""
    params = prunable_parameters(ctx.model)
    needed = sorted({p.weight for g in groups for p in g.slices if p.dim == OUTPUTS})
    scores = {g.name: torch.zeros(g.size, dtype=torch.float64) for g in groups}
    ctx.model.train()
    with preserved_buffers(ctx.model):
        for batch in ctx.batches(batches):
            gradients = {}
            for task in ctx.tasks:
                loss = multitask_loss(ctx, batch, task=task.name)
                values = torch.autograd.grad(loss, [params[n] for n in needed], allow_unused=True)
                gradients[task.name] = {
                    n: g.detach() if g is not None else torch.zeros_like(params[n])
                    for n, g in zip(needed, values, strict=True)
                }
            for group in groups:
                scores[group.name] += filter_cosines(group, gradients)
    return {name: s / batches for name, s in scores.items()}


def channel_masks(model: torch.nn.Module, graph: ChannelGraph, removal: Removal) -> MaskSet:
    """Weight masks that zero the removed channels everywhere they reach (what removing them
    does to the network's function)."""
    params = prunable_parameters(model)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    for group in graph.groups:
        for channel in removal.get(group.name, []):
            for piece in group.slices:
                start = channel * piece.per_channel
                index = torch.tensor(piece.positions[start : start + piece.per_channel])
                masks[piece.weight].index_fill_(
                    piece.dim, index.to(masks[piece.weight].device), False
                )
    return MaskSet(masks, owners_of(model, params))


@register_method("cosprune")
class CosPrune(PruneChannels):
    Options = CosPruneOptions
    paper = "Garg et al., Structured Pruning for Multi-Task Deep Neural Networks, 2023 (CosPrune)"

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        example = next(ctx.batches(1))["image"][:1]
        graph = ChannelGraph(ctx.model, example)
        shared = [g for g in graph.groups if g.owner == SHARED]
        total = graph.total_weights()
        o = self.options
        fewest = {g.name: g.size - min(g.size, o.min_channels) for g in shared}
        most = 1.0 - graph.kept_weights(fewest) / total
        if most < ctx.sparsity:  # out of reach: say so before any training
            self.check_reached(most, ctx.sparsity)
        removal: Removal = {}
        for round_index in range(1, o.rounds + 1):
            target = round((1.0 - ctx.sparsity * round_index / o.rounds) * total)
            scores = cosine_scores(ctx, shared, o.scoring_batches)
            last = round_index == o.rounds  # only the last round's sparsity is the row's
            chosen = extend_global_removal(
                graph,
                scores,
                removal,
                target,
                o.round_to,
                o.min_channels,
                close_within=int(CHANNEL_TOLERANCE * total) if last else None,
            )
            if o.sanity == "shuffle":
                chosen = self._drawn_alike(graph, removal, chosen, ctx.generator)
            removal = chosen
            masks = channel_masks(ctx.model, graph, removal)
            masks.apply(ctx.model)
            if round_index < o.rounds and o.round_steps:
                ctx.train(masks, o.round_steps, self.training_lr(ctx))
        graph.prune(removal)
        masks = MaskSet.dense(ctx.model)
        self.check_reached(masks.sparsity(), ctx.sparsity)
        return masks

    def check_reached(self, reached: float, target: float) -> None:
        try:
            super().check_reached(reached, target)
        except ValueError as error:
            raise ValueError(
                f"{error}; cosprune removes only shared encoder channels and keeps "
                f"method.min_channels={self.options.min_channels} in every layer: lower it"
            ) from None

    @staticmethod
    def _drawn_alike(
        graph: ChannelGraph, before: Removal, chosen: Removal, generator: torch.Generator
    ) -> Removal:
        """As many new channels per group as ``chosen`` adds to ``before``, drawn at random
        among the group's channels still there."""
        drawn: Removal = {}
        for group in graph.groups:
            earlier = before.get(group.name, [])
            extra = len(chosen.get(group.name, [])) - len(earlier)
            gone = set(earlier)
            left = torch.tensor([c for c in range(group.size) if c not in gone])
            order = torch.randperm(len(left), generator=generator)[:extra]
            if earlier or extra:
                drawn[group.name] = sorted(earlier + [int(left[i]) for i in order])
        return drawn
