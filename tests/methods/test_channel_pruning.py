"""Channel pruning: the weights a removal costs (counted by hand), which channels each rule
removes, the surgery on the suite's networks, and the networks it refuses."""

from __future__ import annotations

import pytest
import torch

from core.tasks import make_task
from methods.channel_graph import ChannelGraph
from methods.channel_selection import (
    keep_counts,
    ranked_removal,
    shuffled_removal,
    task_keeps,
    union_removal,
)
from methods.masks import MaskSet, measure_sparsity, prunable_parameters
from methods.networks import model_parts
from methods.registry import build_method

TASKS = (make_task("seg", num_classes=7), make_task("normal"))
VIT_OPTIONS = {"dim": 16, "depth": 2, "heads": 2, "head_channels": 8}


def small_net(width: int = 4):
    torch.manual_seed(0)
    return model_parts("small_cnn", {"width": width}).hard_sharing(TASKS)


def graph_of(model, side: int = 16) -> ChannelGraph:
    return ChannelGraph(model, torch.zeros(1, 3, side, side))


def test_prediction_convs_are_never_grouped_and_the_encoder_output_reaches_every_head():
    groups = {g.name: g for g in graph_of(small_net()).groups}
    assert "heads.seg.1" not in groups and "heads.normal.1" not in groups
    consumers = {p.weight for p in groups["encoder.5.0"].slices if p.dim == 1}
    assert consumers == {"heads.seg.0.0.weight", "heads.normal.0.0.weight"}
    assert groups["encoder.5.0"].owner == "shared" and groups["heads.seg.0.0"].owner == "seg"


def test_removing_a_channel_costs_its_filter_and_the_next_layers_input_slice():
    model = small_net(width=4)
    graph = graph_of(model)
    total = sum(p.numel() for p in prunable_parameters(model).values())
    assert graph.total_weights() == total
    # encoder.0.0 is 4 x 3 x 3x3; encoder.1.0 is 8 x 4 x 3x3: one channel = 27 + 72 weights
    assert graph.kept_weights({"encoder.0.0": 1}) == total - 27 - 72
    # the encoder's last output (16 channels) feeds both heads' 8 x 16 x 3x3 convs and its own
    # 16 x 16 x 3x3 conv: two channels = 2 x (16*9 + 8*9 + 8*9)
    assert graph.kept_weights({"encoder.5.0": 2}) == total - 2 * (144 + 72 + 72)


def test_surgery_removes_exactly_the_counted_weights_and_keeps_every_output():
    model = small_net(width=4)
    graph = graph_of(model)
    before = {k: v.shape for k, v in model.eval()(torch.zeros(2, 3, 16, 16)).items()}
    expected = graph.kept_weights({"encoder.0.0": 1, "encoder.5.0": 2})
    graph.prune({"encoder.0.0": [3], "encoder.5.0": [0, 5]})
    params = prunable_parameters(model)
    assert sum(p.numel() for p in params.values()) == expected
    assert params["encoder.0.0.weight"].shape[0] == 3
    assert params["heads.normal.0.0.weight"].shape[1] == 14
    after = {k: v.shape for k, v in model(torch.zeros(2, 3, 16, 16)).items()}
    assert after == before
    # sparsity counts removed weights as pruned, against the unpruned size
    masks = MaskSet.dense(model)
    assert masks.num_total() == graph.total_weights()
    assert masks.sparsity() == pytest.approx(1 - expected / graph.total_weights())
    assert measure_sparsity(model)["overall"] == pytest.approx(masks.sparsity())
    with pytest.raises(ValueError, match="already removed"):
        graph_of(model)


def test_keep_counts_are_multiples_of_round_to_or_the_whole_group():
    assert keep_counts(10, 1) == list(range(10, 0, -1))
    assert keep_counts(10, 4) == [10, 8, 4]
    assert keep_counts(8, 4) == [8, 4]
    assert keep_counts(3, 8) == [3]


def test_ranked_removal_takes_the_lowest_scored_channels_of_each_group():
    model = small_net(width=4)
    graph = graph_of(model)
    scores = {g.name: torch.arange(g.size, 0, -1).float() for g in graph.groups}  # last = lowest
    removal = ranked_removal(graph, scores, 0.5, round_to=1)
    for group in graph.groups:
        removed = removal[group.name]
        assert removed == list(range(group.size - len(removed), group.size)), group.name
    kept = graph.kept_weights({n: len(i) for n, i in removal.items()})
    assert abs(1 - kept / graph.total_weights() - 0.5) < 0.01


def test_union_removal_keeps_a_shared_channel_any_task_ranks_high():
    model = small_net(width=4)
    graph = graph_of(model)
    shared = [g for g in graph.groups if g.owner == "shared"]
    # task seg ranks channel 0 of every shared group highest, task normal ranks it lowest
    seg = {g.name: torch.linspace(1, 0, g.size) for g in shared}
    normal = {g.name: torch.linspace(0, 1, g.size) for g in shared}
    for g in graph.groups:
        if g.owner == "seg":
            seg[g.name] = torch.rand(g.size)
        elif g.owner == "normal":
            normal[g.name] = torch.rand(g.size)
    removal = union_removal(graph, {"seg": seg, "normal": normal}, 0.6, round_to=1)
    for group in shared:
        assert 0 not in removal[group.name] and group.size - 1 not in removal[group.name]
    kept = graph.kept_weights({n: len(i) for n, i in removal.items()})
    assert abs(1 - kept / graph.total_weights() - 0.6) < 0.01


@pytest.mark.parametrize("name", ["channel_magnitude", "channel_group_taylor", "disparse_channel"])
def test_the_matched_random_control_keeps_every_groups_count_and_draws_the_channels(
    name, context_factory
):
    """sanity=shuffle: the criterion's channel count in each group, channels drawn at random."""
    shapes = {}
    for check in ("none", "shuffle"):
        model = small_net(width=16)
        masks = build_method(name, {"sanity": check}).make_masks(context_factory(model, 0.7))
        shapes[check] = {n: tuple(p.shape) for n, p in prunable_parameters(model).items()}
        shapes[check + " sparsity"] = masks.sparsity()
    assert shapes["none"] == shapes["shuffle"]
    assert shapes["none sparsity"] == shapes["shuffle sparsity"]


def test_shuffled_removal_draws_as_many_channels_per_group_from_the_generator():
    graph = graph_of(small_net(width=16))
    scores = {g.name: torch.arange(g.size, dtype=torch.float) for g in graph.groups}
    ranked = ranked_removal(graph, scores, 0.5, round_to=1)
    draws = [shuffled_removal(graph, ranked, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert draws[0] == draws[1] and draws[0] != draws[2]
    for group in graph.groups:
        assert len(draws[0][group.name]) == len(ranked[group.name])
        assert len(set(draws[0][group.name])) == len(ranked[group.name])
    assert any(draws[0][g.name] != ranked[g.name] for g in graph.groups)


@pytest.mark.parametrize("name", ["channel_magnitude", "disparse_channel"])
def test_round_to_keeps_multiples_of_it(name, context_factory):
    model = small_net(width=16)
    build_method(name, {"round_to": 4}).make_masks(context_factory(model, 0.5))
    for weight, param in prunable_parameters(model).items():
        if not weight.endswith(("heads.seg.1.weight", "heads.normal.1.weight")):
            assert param.shape[0] % 4 == 0, weight


@pytest.mark.parametrize(
    ("name", "options", "width", "sparsity"),
    [("channel_magnitude", {"round_to": 64}, 4, 0.9), ("channel_random", {}, 1, 0.99)],
)
def test_a_target_the_channels_cannot_reach_fails_the_cell_with_the_reason(
    name, options, width, sparsity, context_factory
):
    """Issue 29 N6: round_to past the groups' sizes left everything; one channel per group cannot
    go below what the heads' prediction convs keep. Neither may be ranked at the target."""
    model = small_net(width=width)
    with pytest.raises(ValueError, match=rf"{name} removed channels down to sparsity .* not the"):
        build_method(name, options).make_masks(context_factory(model, sparsity))


@pytest.mark.parametrize("head", ["aspp", "aspp_fc"])
def test_deeplab_channels_are_removed_to_the_target_with_both_heads(head):
    torch.manual_seed(0)
    model = model_parts("deeplab_resnet34", {"head": head}).hard_sharing(TASKS)
    graph = graph_of(model, side=32)
    removal = ranked_removal(graph, {g.name: torch.rand(g.size) for g in graph.groups}, 0.5, 1)
    graph.prune(removal)
    assert abs(measure_sparsity(model)["overall"] - 0.5) < 0.01
    out = model.eval()(torch.zeros(1, 3, 32, 32))
    assert out["seg"].shape == (1, 7, 32, 32) and out["normal"].shape == (1, 3, 32, 32)


@pytest.mark.parametrize(
    ("architecture", "sparsity", "refusal"),
    [
        # The scalar cross-stitch mixes stage outputs through an einsum over a stack, and
        # Torch-Pruning leaves those convs whole: the count check refuses the result.
        ("cross_stitch", 0.7, "Torch-Pruning does not handle"),
        # NDDR-CNN concatenates the tasks' features through a stack: the weight count comes out
        # right but the fused convs' inputs do not (issue 29 N5): the forward check refuses it.
        ("nddr_cnn", 0.5, "channel pruning of .* broke its forward pass"),
    ],
)
def test_a_network_whose_couplings_torch_pruning_misses_is_refused_by_name(
    architecture, sparsity, refusal
):
    torch.manual_seed(0)
    model = build_method(architecture, {}).build_network(
        model_parts("small_cnn", {"width": 4}), TASKS
    )
    graph = graph_of(model)
    scores = {g.name: torch.rand(g.size) for g in graph.groups}
    with pytest.raises(RuntimeError, match=refusal):
        graph.prune(ranked_removal(graph, scores, sparsity, 1))


@pytest.mark.parametrize(
    "name", ["channel_magnitude", "channel_group_taylor", "disparse_channel", "channel_random"]
)
def test_structured_methods_prune_and_fine_tune_deeplab(name, tiny_tasks, tiny_bundle):
    """On the paper's network, in a tiny CPU cell: channels removed to the target, then a few
    fine-tuning steps of the smaller network."""
    from tests.helpers import make_context

    torch.manual_seed(0)
    model = model_parts("deeplab_resnet34", {"head": "aspp"}).hard_sharing(tiny_tasks)
    ctx = make_context(model, tiny_bundle, 0.7)
    masks = build_method(
        name, {"scoring_batches": 1} if "taylor" in name or "disparse" in name else {}
    ).initial_masks(ctx)
    assert abs(masks.sparsity() - 0.7) < 0.01
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx.train(masks, 2)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    out = model.eval()(torch.zeros(1, 3, 16, 16))
    assert all(torch.isfinite(v).all() for v in out.values())


def test_a_network_wide_ranking_keeps_each_tasks_top_channels_over_all_its_groups():
    """rho = 0.5 of 8 channels in two groups: the four best overall, wherever they are."""
    graph = graph_of(small_net(width=4))
    first, second = graph.groups[0], graph.groups[1]
    scores = {first.name: torch.tensor([9.0, 8.0, 7.0, 1.0]), second.name: torch.zeros(4)}
    scores[second.name][2] = 7.5
    network = task_keeps(graph, scores, 0.5, "network")
    assert network[first.name].tolist() == [True, True, True, False]
    assert network[second.name].tolist() == [False, False, True, False]
    layer = task_keeps(graph, scores, 0.5, "layer")
    assert layer[first.name].tolist() == [True, True, False, False]
    assert int(layer[second.name].sum()) == 2


def test_network_ranking_prunes_the_layers_every_task_scores_low_and_keeps_one_step_each():
    model = small_net(width=8)
    graph = graph_of(model)
    rich = graph.groups[0].name  # both tasks score its channels far above every other's
    task_scores = {}
    for task in ("seg", "normal"):
        voted = [g for g in graph.groups if g.owner in ("shared", task)]
        task_scores[task] = {
            g.name: torch.rand(g.size) + (100.0 if g.name == rich else 0.0) for g in voted
        }
    removal = union_removal(graph, task_scores, 0.6, round_to=1, ranking="network")
    assert removal[rich] == []
    assert all(len(removal[g.name]) < g.size for g in graph.groups)  # at least one kept
    kept = graph.kept_weights({n: len(i) for n, i in removal.items()})
    assert abs(1 - kept / graph.total_weights() - 0.6) < 0.01
    layer = union_removal(graph, task_scores, 0.6, round_to=1, ranking="layer")
    assert layer[rich] != []  # layer-uniform: the rich layer loses its share too


def test_a_channels_weight_count_is_its_filter_and_the_next_layers_input_slices():
    """disparse_channel ranks by mean score per weight: the count divides the summed score."""
    model = small_net(width=4)
    graph = graph_of(model)
    group = graph.groups[0]
    ones = {n: torch.ones_like(p) for n, p in prunable_parameters(model).items()}
    by_hand = 0
    for piece in group.slices:
        weight = prunable_parameters(model)[piece.weight]
        by_hand += weight[0].numel() if piece.dim == 0 else weight[:, 0].numel()
    assert torch.equal(
        group.channel_scores(ones), torch.full((group.size,), float(by_hand), dtype=torch.float64)
    )


def test_channel_magnitude_with_batchnorm_ranks_as_torch_pruning_group_magnitude(context_factory):
    """``batchnorm=true``: within every group the channels' order is that of Torch-Pruning's
    default GroupMagnitudeImportance (p=2, BatchNorm gamma counted), computed by Torch-Pruning."""
    import torch_pruning as tp

    from methods.channel_magnitude import ChannelMagnitude
    from methods.masks import PRUNABLE_MODULES

    model = small_net(width=8)
    for module in model.modules():  # gammas that differ from 1, so they change the order
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.1, 3.0)
    graph = graph_of(model)
    method = ChannelMagnitude(ChannelMagnitude.Options(batchnorm=True))
    context = context_factory(model, 0.5)
    ours = method.channel_scores(context, graph)
    reference = tp.DependencyGraph().build_dependency(model.eval(), graph.example)
    importance = tp.importance.GroupMagnitudeImportance(p=2)
    names = {module: name for name, module in model.named_modules()}
    compared = 0
    for group in reference.get_all_groups(root_module_types=PRUNABLE_MODULES):
        name = names[group[0].dep.target.module]
        if name in ours:
            theirs = importance(group).double()
            assert torch.equal(torch.argsort(ours[name]), torch.argsort(theirs)), name
            compared += 1
    assert compared == len(graph.groups) > 3
    plain = ChannelMagnitude(ChannelMagnitude.Options()).channel_scores(context, graph)
    assert any(not torch.equal(torch.argsort(plain[n]), torch.argsort(ours[n])) for n in ours)


def test_a_depthwise_channel_costs_its_filter_the_producers_filter_and_the_consumers_inputs():
    """MobileNetV2 at width 0.25: each of block 2's 48 expanded channels costs an 8-input
    expansion filter, a 3x3 depthwise filter (9) and one input of the 8-channel projection;
    block 17's 240 a 40-input expansion filter, a depthwise filter and one input of the
    80-channel projection. The surgery removes exactly that."""
    torch.manual_seed(0)
    model = model_parts("mobilenet_v2", {"width": 0.25, "head_channels": 8}).hard_sharing(TASKS)
    graph = graph_of(model)
    total = graph.total_weights()
    assert graph.kept_weights({"encoder.2.block.3": 1}) == total - (8 + 9 + 8)
    assert graph.kept_weights({"encoder.17.block.3": 2}) == total - 2 * (40 + 9 + 80)
    graph.prune({"encoder.2.block.3": [47], "encoder.17.block.3": [0, 100]})
    assert sum(p.numel() for p in prunable_parameters(model).values()) == total - 25 - 258
    depthwise = model.get_submodule("encoder.17.block.3")
    assert depthwise.weight.shape == (238, 1, 3, 3) and depthwise.groups == 238
    assert model.get_submodule("encoder.2.block.0").weight.shape == (47, 8, 1, 1)


def test_grouped_convolutions_other_than_depthwise_are_refused_by_name():
    model = small_net()
    old = model.encoder[1][0]
    model.encoder[1][0] = torch.nn.Conv2d(old.in_channels, old.out_channels, 3, padding=1, groups=2)
    with pytest.raises(ValueError, match=r"encoder\.1\.0\.weight: grouped convolutions other"):
        graph_of(model)


def test_an_attention_head_costs_its_query_key_value_rows_and_its_proj_columns():
    """ViT at dim 16 with 2 heads (width 8) and 2 blocks: a head is 3 x 8 rows of the 16-input
    qkv and 8 input columns of the 16-output proj, 3*8*16 + 16*8 = 512 weights; an MLP unit one
    16-input row and one 16-output column, 32; a token channel (the residual stream) a 4x4x3
    patch filter, per block a qkv column (48), a proj row (16) and the MLP's column and row (32
    each), and a 3x3 input slice of each task head's 8-channel first conv: 48 + 2*128 + 2*72."""
    torch.manual_seed(0)
    model = model_parts("vit", VIT_OPTIONS).hard_sharing(TASKS)
    graph = graph_of(model)
    names = {g.name: g.size for g in graph.groups}
    assert names["encoder.1.attention.qkv"] == 2 and names["encoder.2.mlp.0"] == 32
    assert names["encoder.2.mlp.2"] == 16  # the residual stream, rooted at the last block
    total = graph.total_weights()
    assert graph.kept_weights({"encoder.1.attention.qkv": 1}) == total - 512
    assert graph.kept_weights({"encoder.2.mlp.0": 3}) == total - 3 * 32
    assert graph.kept_weights({"encoder.2.mlp.2": 1}) == total - 448
    # together: the head's rows lose the token channel's column too (3*8 + 16 - 8 overlaps)
    both = {"encoder.1.attention.qkv": 1, "encoder.2.mlp.2": 1}
    assert graph.kept_weights(both) == total - 512 - 448 + 24 + 8
    graph.prune(
        {"encoder.1.attention.qkv": [0], "encoder.2.mlp.0": [5, 6, 7], "encoder.2.mlp.2": [3]}
    )
    left = sum(p.numel() for p in prunable_parameters(model).values())
    assert left == total - 512 - 448 + 24 + 8 - 3 * (32 - 2)  # the units' column and row
    attention = model.get_submodule("encoder.1.attention")
    assert attention.heads == 1 and attention.qkv.weight.shape == (24, 15)
    assert model.get_submodule("encoder.2.mlp.2").weight.shape == (15, 29)
    assert model.get_submodule("encoder.0").position.shape == (1, 15, 8, 8)


def test_removing_a_head_leaves_attention_as_if_its_output_were_zeroed():
    """Independent of the surgery's index arithmetic: dense attention whose proj ignores head
    0's columns computes what the attention with head 0 removed computes."""
    torch.manual_seed(0)
    model = model_parts("vit", VIT_OPTIONS).hard_sharing(TASKS).eval()
    attention = model.get_submodule("encoder.1.attention")
    tokens = torch.randn(2, 5, 16)
    with torch.no_grad():
        reference = attention.proj.weight.clone()
        attention.proj.weight[:, :8] = 0  # head 0's 8 output columns
        expected = attention(tokens)
        attention.proj.weight.copy_(reference)
    graph_of(model).prune({"encoder.1.attention.qkv": [0]})
    with torch.no_grad():
        assert torch.allclose(attention(tokens), expected, atol=1e-6)
