"""Global channel removal: the lowest-scored channels anywhere go first (one ranking across
layers, as iterative criteria such as Molchanov et al.'s and CosPrune rank), extending what
earlier rounds removed, until the weights left reach a target.

A group never drops below ``min_channels`` (or fewer than it has) and keeps a count allowed by
``round_to`` (``methods.channel_selection.keep_counts``): a group's removal is rounded down to an
allowed count, so the number of single-channel steps taken is solved by bisection exactly as for
the layer-uniform rule.
"""

from __future__ import annotations

import torch

from methods.channel_graph import ChannelGraph, ChannelGroup
from methods.channel_selection import Removal, closest_count, keep_counts


def _smallest_keep(group: ChannelGroup, round_to: int, min_channels: int) -> int:
    floor = min(min_channels, group.size)
    return min(k for k in keep_counts(group.size, round_to) if k >= floor)


def _allowed_removal(group: ChannelGroup, wanted: int, round_to: int) -> int:
    """The largest removal of at most ``wanted`` channels that leaves an allowed keep count."""
    allowed = [group.size - k for k in keep_counts(group.size, round_to)]
    return max(r for r in allowed if r <= wanted)


def extend_global_removal(
    graph: ChannelGraph,
    scores: dict[str, torch.Tensor],
    removed: Removal,
    target_kept: int,
    round_to: int = 1,
    min_channels: int = 1,
) -> Removal:
    """``removed`` plus the lowest-scored channels of the groups in ``scores`` (ranked across
    groups) so that the weights left are as close as possible to ``target_kept``."""
    groups = {g.name: g for g in graph.groups if g.name in scores}
    candidates = []  # (score, group, channel) not removed yet, lowest first
    for name, group_scores in scores.items():
        gone = set(removed.get(name, []))
        candidates += [(float(s), name, c) for c, s in enumerate(group_scores) if c not in gone]
    candidates.sort()
    caps = {
        n: g.size - _smallest_keep(g, round_to, min_channels) - len(removed.get(n, []))
        for n, g in groups.items()
    }
    order: list[tuple[str, int]] = []  # the candidates each group can still give, in rank order
    taken = dict.fromkeys(groups, 0)
    for _, name, channel in candidates:
        if taken[name] < caps[name]:
            taken[name] += 1
            order.append((name, channel))

    def removal_after(steps: int) -> Removal:
        picked: dict[str, list[int]] = {n: list(removed.get(n, [])) for n in removed}
        for name, channel in order[:steps]:
            picked.setdefault(name, []).append(channel)
        rounded = {}
        for name, channels in picked.items():  # earlier removals first, then in rank order
            group = groups.get(name)
            count = (
                len(channels) if group is None else _allowed_removal(group, len(channels), round_to)
            )
            rounded[name] = sorted(channels[:count])
        return rounded

    def kept(steps: int) -> int:
        return graph.kept_weights({n: len(c) for n, c in removal_after(steps).items()})

    return removal_after(closest_count(kept, len(order), target_kept))
