"""Global channel removal: the lowest-scored channels anywhere go first (one ranking across
layers, as iterative criteria such as Molchanov et al.'s and CosPrune rank), extending what
earlier rounds removed, until the weights left reach a target.

A group never drops below ``min_channels`` (or fewer than it has) and keeps a count allowed by
``round_to`` (``methods.channel_selection.keep_counts``): a group's removal is rounded down to an
allowed count, so the number of single-channel steps taken is solved by bisection exactly as for
the layer-uniform rule.
"""

from __future__ import annotations

from collections.abc import Callable

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
    close_within: int | None = None,
) -> Removal:
    """``removed`` plus the lowest-scored channels of the groups in ``scores`` (ranked across
    groups) so that the weights left are as close as possible to ``target_kept``.

    The rank order alone lands within about one channel of the target, and a large channel at
    the crossing can leave more than a method's tolerance. When that gap exceeds
    ``close_within`` weights, channels too large for it are passed over for smaller ones ranked
    after them (``_closing_picks``); ``None`` keeps the rank order whatever the gap."""
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

    def removal_of(picks: list[tuple[str, int]]) -> Removal:
        picked: dict[str, list[int]] = {n: list(removed.get(n, [])) for n in removed}
        for name, channel in picks:
            picked.setdefault(name, []).append(channel)
        rounded = {}
        for name, channels in picked.items():  # earlier removals first, then in rank order
            group = groups.get(name)
            count = (
                len(channels) if group is None else _allowed_removal(group, len(channels), round_to)
            )
            rounded[name] = sorted(channels[:count])
        return rounded

    def kept_by(picks: list[tuple[str, int]]) -> int:
        return graph.kept_weights({n: len(c) for n, c in removal_of(picks).items()})

    steps = closest_count(lambda n: kept_by(order[:n]), len(order), target_kept)
    if close_within is None or abs(kept_by(order[:steps]) - target_kept) <= close_within:
        return removal_of(order[:steps])
    return removal_of(_closing_picks(order, kept_by, target_kept))


def _closing_picks(
    order: list[tuple[str, int]], kept_by: Callable[[list[tuple[str, int]]], int], target: int
) -> list[tuple[str, int]]:
    """The rank-order prefix that still keeps at least ``target`` weights, then each later
    channel, in rank order, whose removal brings the weights left closer to ``target``: the
    channels too large for the gap are passed over, the smaller ones after them close it."""
    steps = closest_count(lambda n: kept_by(order[:n]), len(order), target)
    while steps and kept_by(order[:steps]) < target:
        steps -= 1
    picks = list(order[:steps])
    distance = abs(kept_by(picks) - target)
    for candidate in order[steps:]:
        trial = abs(kept_by([*picks, candidate]) - target)
        if trial < distance:
            picks.append(candidate)
            distance = trial
    return picks
