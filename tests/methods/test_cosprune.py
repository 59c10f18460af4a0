"""CosPrune: the filter cosine against a direct computation, the global removal's floors and
target, the channel masks against removing the channels, and the rounds."""

from __future__ import annotations

import itertools

import pytest
import torch

from methods.channel_global import extend_global_removal
from methods.channel_graph import OUTPUTS, ChannelGraph
from methods.cosprune import channel_masks, cosine_scores, filter_cosines
from methods.masks import prunable_parameters
from methods.networks.base import SHARED
from methods.registry import build_method
from methods.scoring import multitask_loss


def _graph(model) -> ChannelGraph:
    return ChannelGraph(model, torch.randn(1, 3, 16, 16))


def test_filter_cosine_by_hand():
    """Two tasks, one conv producing two channels of two weights each."""

    class Piece:
        weight, dim, per_channel, positions = "w", OUTPUTS, 1, (0, 1)

        def channel_sums(self, values, size):
            return values.reshape(size, -1).sum(dim=1)

    class Group:
        size, slices = 2, (Piece(),)

    a = {"w": torch.tensor([[1.0, 0.0], [3.0, 4.0]])}
    b = {"w": torch.tensor([[0.0, 2.0], [-3.0, -4.0]])}
    cosines = filter_cosines(Group(), {"seg": a, "normal": b})
    assert cosines.tolist() == pytest.approx([0.0, -1.0])


def test_cosine_scores_match_torch_cosine_similarity(tiny_model, context_factory):
    ctx = context_factory(tiny_model, 0.5)
    graph = _graph(tiny_model)
    shared = [g for g in graph.groups if g.owner == SHARED]
    scores = cosine_scores(ctx, shared, 2)
    params = prunable_parameters(tiny_model)
    expected = {g.name: torch.zeros(g.size, dtype=torch.float64) for g in shared}
    for batch in ctx.batches(2):
        grads = {}
        for task in ctx.tasks:
            tiny_model.zero_grad()
            multitask_loss(ctx, batch, task=task.name).backward()
            grads[task.name] = {n: p.grad.clone() for n, p in params.items() if p.grad is not None}
        for group in shared:
            (weight,) = [p.weight for p in group.slices if p.dim == OUTPUTS]
            rows = {t: g[weight].flatten(1) for t, g in grads.items()}  # one filter per row
            for first, second in itertools.combinations(sorted(rows), 2):
                cos = torch.nn.functional.cosine_similarity(rows[first], rows[second], dim=1)
                expected[group.name] += cos.double() / 2  # two batches
    for name, values in scores.items():
        assert torch.allclose(values, expected[name], atol=1e-5), name


def test_global_removal_ranks_across_groups_with_floors_and_hits_the_target(tiny_model):
    graph = _graph(tiny_model)
    shared = [g for g in graph.groups if g.owner == SHARED]
    generator = torch.Generator().manual_seed(0)
    scores = {g.name: torch.rand(g.size, generator=generator, dtype=torch.float64) for g in shared}
    target = round(0.4 * graph.total_weights())
    removal = extend_global_removal(graph, scores, {}, target, min_channels=3)
    kept = graph.kept_weights({n: len(c) for n, c in removal.items()})
    one_channel = max(graph.kept_weights({n: 1}) for n in scores) - graph.total_weights()
    assert abs(kept - target) <= abs(one_channel)
    threshold = max(float(scores[n][c]) for n, cs in removal.items() for c in cs)
    for group in shared:
        gone = set(removal.get(group.name, []))
        assert group.size - len(gone) >= 3
        # below the highest removed score, a channel was kept only where its group hit the floor
        spared = [
            c for c in range(group.size) if c not in gone and scores[group.name][c] < threshold
        ]
        assert not spared or group.size - len(gone) == 3, group.name
    again = extend_global_removal(graph, scores, removal, round(0.2 * graph.total_weights()))
    assert all(set(removal[n]) <= set(again[n]) for n in removal)  # later rounds extend


def test_a_large_channel_at_the_crossing_is_passed_over_for_smaller_ones(tiny_model):
    """The small CNN at width 4: a channel of encoder.5 carries 288 weights, one of encoder.1
    108, and 1% of the 9116 weights is 91. Ranked lowest, encoder.5's channels alone leave the
    target 144 weights away (one or two of them); closing the gap skips the rest of encoder.5
    for one channel of encoder.1, 36 weights away."""
    graph = _graph(tiny_model)
    total = graph.total_weights()
    assert total == 9116
    rank = {"encoder.5.0": 0.0, "encoder.1.0": 1.0}
    scores = {
        g.name: rank.get(g.name, 2.0) + torch.arange(g.size, dtype=torch.float64) / 100
        for g in graph.groups
        if g.owner == SHARED
    }
    target = total - 432  # one and a half of encoder.5's channels
    ranked = extend_global_removal(graph, scores, {}, target)
    assert ranked == {"encoder.5.0": [0]}
    assert extend_global_removal(graph, scores, {}, target, close_within=144) == ranked
    closed = extend_global_removal(graph, scores, {}, target, close_within=91)
    assert closed == {"encoder.5.0": [0], "encoder.1.0": [0]}
    assert graph.kept_weights({n: len(c) for n, c in closed.items()}) == total - 288 - 108


def test_global_removal_keeps_multiples_of_round_to(tiny_model):
    graph = _graph(tiny_model)
    scores = {
        g.name: torch.arange(g.size, dtype=torch.float64) for g in graph.groups if g.owner == SHARED
    }
    removal = extend_global_removal(
        graph, scores, {}, round(0.3 * graph.total_weights()), round_to=4
    )
    sizes = {g.name: g.size for g in graph.groups}
    assert removal and all((sizes[n] - len(c)) % 4 == 0 for n, c in removal.items())


def test_channel_masks_compute_what_removing_the_channels_computes(tiny_model):
    graph = _graph(tiny_model)
    group = next(g for g in graph.groups if g.owner == SHARED)
    removal = {group.name: [0, 2]}
    masks = channel_masks(tiny_model, graph, removal)
    masks.apply(tiny_model)
    x = torch.randn(2, 3, 16, 16)
    tiny_model.eval()
    with torch.no_grad():
        before = tiny_model(x)
        graph.prune(removal)
        after = tiny_model(x)
    for task in before:
        assert torch.allclose(before[task], after[task], atol=1e-5), task


def test_rounds_train_between_them_and_only_shared_channels_go(tiny_model, context_factory):
    ctx = context_factory(tiny_model, 0.6)
    trained = []
    original_train = ctx.train

    def counting_train(masks, steps, lr=None):
        trained.append((steps, round(masks.sparsity(), 2)))
        original_train(masks, steps, lr)

    ctx.train = counting_train
    heads = {
        n: p.shape for n, p in prunable_parameters(tiny_model).items() if n.startswith("heads")
    }
    method = build_method("cosprune", {"rounds": 3, "round_steps": 2, "scoring_batches": 1})
    masks = method.make_masks(ctx)
    assert [steps for steps, _ in trained] == [2, 2]
    assert [s for _, s in trained] == pytest.approx([0.2, 0.4], abs=0.03)
    assert abs(masks.sparsity() - 0.6) < 0.01
    after = {
        n: p.shape for n, p in prunable_parameters(tiny_model).items() if n.startswith("heads")
    }
    # a head loses only the input columns of encoder channels that went, never its own outputs
    assert all(after[n][0] == heads[n][0] for n in heads)


def test_a_target_the_shared_channels_cannot_reach_fails_before_any_training(
    tiny_model, context_factory
):
    """Removing the shared encoder's channels, every group down to one, reaches 96.8% of the
    small CNN's weights: at 98% cosprune says so without training its rounds first."""
    graph = _graph(tiny_model)
    shared = {g.name: g.size - 1 for g in graph.groups if g.owner == SHARED}
    reachable = 1 - graph.kept_weights(shared) / graph.total_weights()
    assert reachable < 0.98
    ctx = context_factory(tiny_model, 0.98)
    ctx.train = lambda *args, **kwargs: pytest.fail("cosprune trained for an unreachable target")
    method = build_method("cosprune", {"rounds": 3, "round_steps": 2, "scoring_batches": 1})
    with pytest.raises(ValueError, match=f"sparsity {reachable:.4f}, not the 0.9800.*min_channels"):
        method.make_masks(ctx)


@pytest.mark.parametrize("option,value", [("rounds", 0), ("round_steps", -1), ("min_channels", 0)])
def test_bad_options_name_themselves(option, value):
    with pytest.raises(ValueError, match=option):
        build_method("cosprune", {option: value})
