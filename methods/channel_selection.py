"""Which channels a structured method removes, so that the weights left hit the requested sparsity.

The sparsity axis is the unstructured methods' one: the fraction of prunable weights removed, so a
channel row and an unstructured row at 70% hold the same number of nonzero weights. Channels come
in whole groups (``methods.channel_graph``), so a target is met to within about one channel's
weights; the keep counts are multiples of ``round_to`` (GPU kernels prefer multiples of 8), and
every group keeps at least one step of channels.

- ``ranked_removal``: every group loses the same fraction of its channels, its lowest-scored
  first (layer-uniform; one global order of single-channel steps, so the number of steps taken
  is solved exactly by bisection).
- ``shuffled_removal``: the matched random control of any of them: as many channels removed
  from each group, drawn at random.
- ``union_removal``: DiSparse's rule. Each task keeps the top ``rho`` of the channels it scores,
  ranked over the whole network (``ranking="network"``, as the authors rank weights) or within
  each group (``"layer"``); a shared group keeps the union of the tasks' keeps (a channel goes
  only when every task ranks it prunable), a task's own group that task's keep, every group at
  least one step; ``rho`` is solved by bisection, then single steps of the lowest summed-score
  channels close the gap a whole ``rho`` step leaves.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from methods.channel_graph import ChannelGraph, ChannelGroup
from methods.networks.base import SHARED

Removal = dict[str, list[int]]  # group name -> channel indices removed


def keep_counts(size: int, round_to: int) -> list[int]:
    """Allowed numbers of kept channels, largest first: all of them, then multiples of
    ``round_to`` down to ``round_to`` (a group of at most ``round_to`` channels stays whole)."""
    smaller = range(((size - 1) // round_to) * round_to, 0, -round_to)
    return [size, *smaller]


def _removal_for(scores: torch.Tensor, keep: int) -> list[int]:
    order = torch.argsort(scores, stable=True)  # lowest score first
    return sorted(int(i) for i in order[: scores.numel() - keep])


def _target(graph: ChannelGraph, sparsity: float) -> int:
    return round((1.0 - sparsity) * graph.total_weights())


def closest_count(kept: Callable[[int], int], most: int, target: int) -> int:
    """The number of steps, 0 to ``most``, whose ``kept(steps)`` weights are closest to
    ``target``, ``kept`` falling as steps grow (bisection for where it crosses the target)."""
    low, high = 0, most  # kept(low) >= target; find the last such count of steps
    if kept(high) >= target:
        low = high
    while high - low > 1:
        middle = (low + high) // 2
        if kept(middle) >= target:
            low = middle
        else:
            high = middle
    return min((low, high), key=lambda n: abs(kept(n) - target))


def ranked_removal(
    graph: ChannelGraph, scores: dict[str, torch.Tensor], sparsity: float, round_to: int
) -> Removal:
    """Layer-uniform removal of the lowest-scored channels, closest to ``sparsity``."""
    steps = []  # (fraction of the group removed, group index, channels kept)
    for index, group in enumerate(graph.groups):
        for keep in keep_counts(group.size, round_to)[1:]:
            steps.append(((group.size - keep) / group.size, index, keep))
    steps.sort()

    def keeps_after(taken: int) -> dict[str, int]:
        keeps = {group.name: group.size for group in graph.groups}
        for _, index, keep in steps[:taken]:
            keeps[graph.groups[index].name] = keep
        return keeps

    def kept(taken: int) -> int:
        keeps = keeps_after(taken)
        return graph.kept_weights({g.name: g.size - keeps[g.name] for g in graph.groups})

    keeps = keeps_after(closest_count(kept, len(steps), _target(graph, sparsity)))
    return {g.name: _removal_for(scores[g.name], keeps[g.name]) for g in graph.groups}


RANKINGS = ("network", "layer")


def _top(scores: torch.Tensor, rho: float) -> torch.Tensor:
    """The top ``rho`` of ``scores`` (at least one) as a mask."""
    kept = torch.zeros(scores.numel(), dtype=torch.bool)
    count = max(1, math.ceil(rho * scores.numel()))
    kept[torch.argsort(scores, descending=True, stable=True)[:count]] = True
    return kept


def task_keeps(
    graph: ChannelGraph, scores: dict[str, torch.Tensor], rho: float, ranking: str
) -> dict[str, torch.Tensor]:
    """One task's kept channels in each group it scores when it keeps its top ``rho``: of all
    those channels together (``network``), or of each group (``layer``)."""
    if ranking == "layer":
        return {name: _top(group_scores, rho) for name, group_scores in scores.items()}
    names = [g.name for g in graph.groups if g.name in scores]
    kept = _top(torch.cat([scores[name] for name in names]), rho)
    return dict(zip(names, kept.split([scores[name].numel() for name in names]), strict=True))


def _rounded_union(
    group: ChannelGroup, keeps: list[torch.Tensor], summed: torch.Tensor, round_to: int
) -> torch.Tensor:
    """The union of the voting tasks' keeps, grown to an allowed count (at least one step) by
    the tasks' ``summed`` scores."""
    kept = torch.stack(keeps).any(dim=0)
    allowed = min(k for k in keep_counts(group.size, round_to) if k >= int(kept.sum()))
    filler = summed.masked_fill(kept, math.inf)
    kept[torch.argsort(filler, descending=True, stable=True)[:allowed]] = True
    return kept


def union_removal(
    graph: ChannelGraph,
    task_scores: dict[str, dict[str, torch.Tensor]],
    sparsity: float,
    round_to: int,
    ranking: str = "layer",
    iterations: int = 50,
) -> Removal:
    """DiSparse's union of per-task channel keeps, the per-task ratio solved for ``sparsity``.
    With ``ranking="network"`` each task's scores are compared across groups: give them on one
    scale (``disparse_channel`` gives the mean score per weight of each channel)."""

    def voters(group: ChannelGroup) -> list[str]:
        return list(task_scores) if group.owner == SHARED else [group.owner]

    summed = {  # the tasks' scores added: what fills a rounded union and closes the gap
        g.name: torch.stack([task_scores[t][g.name] for t in voters(g)]).sum(dim=0)
        for g in graph.groups
    }

    def keeps_at(rho: float) -> dict[str, torch.Tensor]:
        tasks = {t: task_keeps(graph, s, rho, ranking) for t, s in task_scores.items()}
        return {
            g.name: _rounded_union(
                g, [tasks[t][g.name] for t in voters(g)], summed[g.name], round_to
            )
            for g in graph.groups
        }

    target = _target(graph, sparsity)
    low, high = 0.0, 1.0
    best = keeps_at(high)
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        keeps = keeps_at(middle)
        kept = _kept_weights(graph, keeps)
        if abs(kept - target) < abs(_kept_weights(graph, best) - target):
            best = keeps
        if kept > target:
            high = middle
        else:
            low = middle
    best = _close_gap(graph, best, summed, target, round_to)
    return {name: [int(i) for i in torch.nonzero(~kept).flatten()] for name, kept in best.items()}


def _kept_weights(graph: ChannelGraph, keeps: dict[str, torch.Tensor]) -> int:
    return graph.kept_weights({name: int((~kept).sum()) for name, kept in keeps.items()})


def _close_gap(
    graph: ChannelGraph,
    keeps: dict[str, torch.Tensor],
    scores: dict[str, torch.Tensor],
    target: int,
    round_to: int,
) -> dict[str, torch.Tensor]:
    """Move one step of channels at a time (the lowest-scored kept ones out, or the
    highest-scored removed ones back) while that brings the weights kept closer to ``target``."""
    keeps = dict(keeps)
    while True:
        now = _kept_weights(graph, keeps)
        remove = now > target
        options = []
        for group in graph.groups:
            count = int(keeps[group.name].sum())
            allowed = [
                k for k in keep_counts(group.size, round_to) if (k < count if remove else k > count)
            ]
            if not allowed:
                continue
            step = count - max(allowed) if remove else min(allowed) - count
            candidate = _moved(keeps[group.name], scores[group.name], step, remove)
            gap = abs(_kept_weights(graph, {**keeps, group.name: candidate}) - target)
            options.append((gap, group.name, candidate))
        best = min(options, key=lambda option: option[0], default=None)
        if best is None or best[0] >= abs(now - target):
            return keeps
        keeps[best[1]] = best[2]


def _moved(kept: torch.Tensor, scores: torch.Tensor, step: int, remove: bool) -> torch.Tensor:
    """``kept`` with its ``step`` lowest-scored kept channels removed (or, with ``remove``
    false, its ``step`` highest-scored removed channels restored)."""
    pool = torch.nonzero(kept if remove else ~kept).flatten()
    order = torch.argsort(scores[pool], descending=not remove, stable=True)
    moved = kept.clone()
    moved[pool[order[:step]]] = not remove
    return moved


def shuffled_removal(graph: ChannelGraph, removal: Removal, generator: torch.Generator) -> Removal:
    """``removal`` with each group's removed channels redrawn uniformly at random, as many as
    before: the same channel counts (so the same sparsity and shape), no criterion."""
    return {
        g.name: sorted(
            int(i) for i in torch.randperm(g.size, generator=generator)[: len(removal[g.name])]
        )
        for g in graph.groups
    }
