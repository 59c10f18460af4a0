"""Dedicated multitask architectures: shapes, ownership, initialisation, attention range, cost."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.tasks import make_task
from methods.lifecycle import MethodKind
from methods.masks import prunable_parameters
from methods.networks import SHARED, model_parts
from methods.networks.complexity import complexity
from methods.registry import build_method, list_methods

TASKS = (make_task("seg", num_classes=7), make_task("normal"), make_task("depth"))
ARCHITECTURES = ["single_task", "cross_stitch", "mtan", "nddr_cnn"]


def network(name, tasks=TASKS, width=4):
    torch.manual_seed(0)
    return build_method(name, {}).build_network(model_parts("small_cnn", {"width": width}), tasks)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_forward_gives_each_task_its_shape(name):
    out = network(name)(torch.randn(2, 3, 16, 24))
    assert out["seg"].shape == (2, 7, 16, 24)
    assert out["normal"].shape == (2, 3, 16, 24)
    assert out["depth"].shape == (2, 1, 16, 24)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_parameter_has_a_structural_owner(name):
    model = network(name)
    owners = model.parameter_owners()
    assert set(owners) == {n for n, _ in model.named_parameters()}
    assert set(owners.values()) <= {SHARED, "seg", "normal", "depth"}


def test_single_task_shares_nothing_and_costs_the_sum_of_its_networks():
    model = network("single_task")
    assert SHARED not in model.parameter_owners().values()
    hard = build_method("dense", {}).build_network(model_parts("small_cnn", {"width": 4}), TASKS)
    encoder = sum(p.numel() for p in hard.encoder.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert total == sum(p.numel() for p in hard.parameters()) + (len(TASKS) - 1) * encoder


def test_cross_stitch_units_start_identity_leaning_belong_to_their_task_and_learn():
    model = network("cross_stitch", TASKS[:2])
    owners = model.parameter_owners()
    unit = model.fusions[0]["seg"]
    assert unit.alpha.tolist() == pytest.approx([0.9, 0.1])
    assert model.fusions[2]["normal"].alpha.tolist() == pytest.approx([0.1, 0.9])
    assert owners["fusions.0.seg.alpha"] == "seg"
    assert owners["fusions.1.normal.alpha"] == "normal"
    out = model(torch.randn(2, 3, 16, 24))
    out["seg"].square().mean().backward()
    assert unit.alpha.grad is not None and unit.alpha.grad.abs().sum() > 0


def test_cross_stitch_mixes_features_linearly():
    model = network("cross_stitch", TASKS[:2])
    unit = model.fusions[0]["normal"]
    a, b = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    assert torch.allclose(unit(torch.stack([a, b])), 0.1 * a + 0.9 * b)


def test_nddr_layers_start_as_weighted_identity_and_belong_to_their_task():
    model = network("nddr_cnn", TASKS[:2])
    layer = model.fusions[1]["normal"]
    weight = layer.reduce.weight[:, :, 0, 0]
    channels = weight.shape[0]
    assert torch.allclose(weight[:, :channels], 0.1 * torch.eye(channels))
    assert torch.allclose(weight[:, channels:], 0.9 * torch.eye(channels))
    owners = model.parameter_owners()
    assert owners["fusions.1.normal.reduce.weight"] == "normal"
    assert owners["encoders.seg.0.0.weight"] == "seg"


def gate_inputs(model, x):
    """What each task's gate at each stage reads, captured by forward hooks."""
    seen = {}
    hooks = [
        gate.register_forward_hook(
            lambda module, args, out, key=(task, s): seen.__setitem__(key, args[0])
        )
        for task, gates in model.gates.items()
        for s, gate in enumerate(gates)
    ]
    model(x)
    for hook in hooks:
        hook.remove()
    return seen


def test_mtan_mask_reads_the_feature_before_the_stages_last_block_and_the_carried_feature():
    model = network("mtan", TASKS[:2]).eval()
    x = torch.randn(2, 3, 16, 24)
    enc = model.encoder  # small_cnn: stages end after blocks 1, 3 and 6 (one block = one module)
    seen = gate_inputs(model, x)
    assert torch.equal(seen[("seg", 0)], x)  # stage 0 is one block: its input
    _, masks = model.attend(x)
    attended_0 = masks[0]["seg"] * enc[:1](x)
    carried = torch.nn.functional.max_pool2d(model.links[0](attended_0), 2)  # 16x24 -> 8x12
    expected = torch.cat([enc[:2](x), carried], dim=1)
    assert torch.allclose(seen[("seg", 1)], expected, atol=1e-6)
    assert seen[("normal", 2)].shape[1] == 16 + 16  # before-last of stage 2 (4w) + carried (4w)


def test_mtan_applies_each_mask_to_the_stage_output():
    model = network("mtan", TASKS[:2]).eval()
    x = torch.randn(2, 3, 16, 24)
    features, masks = model.attend(x)
    for task in ("seg", "normal"):
        assert masks[2][task].min() >= 0 and masks[2][task].max() <= 1
        assert torch.allclose(features[task], masks[2][task] * model.encoder(x), atol=1e-6)


def test_mtan_links_are_shared_by_all_tasks_and_gates_belong_to_their_task():
    model = network("mtan")
    owners = model.parameter_owners()
    assert owners["encoder.0.0.weight"] == SHARED
    assert owners["links.0.0.weight"] == SHARED
    assert len(model.links) == 2  # stage k -> k+1, none after the last stage
    assert model.links[1][0].weight.shape[:2] == (16, 8)  # C_1 = 2w -> C_2 = 4w
    assert owners["gates.depth.1.0.weight"] == "depth"
    assert model.gates["depth"][1][0].weight.shape[:2] == (8 // 4, 8 + 8)  # hidden C/4


def test_mtan_on_resnet_reads_inside_the_last_residual_layer():
    from methods.networks.parts import split_last_residual_block

    torch.manual_seed(0)
    stage = model_parts("deeplab_resnet34", {}).make_encoder()[6:7].eval()  # layer2: 4 blocks
    body, last = split_last_residual_block(stage)
    assert last is stage[0][3] and len(body) == 3
    x = torch.randn(1, 64, 8, 8)
    assert torch.allclose(last(body(x)), stage(x), atol=1e-5)


def test_architectures_are_registered_dense_methods():
    registered = set(list_methods())
    assert set(ARCHITECTURES) | {"hard_sharing"} <= registered
    for name in ARCHITECTURES:
        method = build_method(name, {})
        assert method.kind == MethodKind.ARCHITECTURE and not method.prunes


def test_complexity_counts_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Conv2d(4, 2, 1))
    with torch.no_grad():
        model[0].weight[:2] = 0  # half the first layer's weights are zero
    cost = complexity(model, (3, 5, 6))
    assert cost["params"] == 3 * 4 * 9 + 4 * 2 + 2
    assert cost["params_nonzero"] == 3 * 2 * 9 + 4 * 2 + 2
    first, second = 5 * 6 * 4 * 27, 5 * 6 * 2 * 4
    assert cost["macs"] == first + second
    assert cost["macs_nonzero"] == first // 2 + second


def test_prunable_tensors_of_architectures_cover_fusion_convs():
    names = prunable_parameters(network("nddr_cnn"))
    assert "fusions.0.seg.reduce.weight" in names


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architectures_build_on_the_resnet34_stages(name):
    torch.manual_seed(0)
    parts = model_parts("deeplab_resnet34", {})
    model = build_method(name, {}).build_network(parts, TASKS[:2])
    out = model(torch.randn(1, 3, 24, 24))
    assert out["seg"].shape == (1, 7, 24, 24) and out["normal"].shape == (1, 3, 24, 24)
    owners = model.parameter_owners()
    assert set(owners) == {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize(
    "name, options",
    [
        ("dense", {}),
        ("mtan", {}),
        ("nddr_cnn", {}),
        ("single_task", {}),
        ("cross_stitch", {}),
        ("cross_stitch", {"weights": "channel"}),
    ],
)
def test_counted_macs_equal_torch_flop_counter_on_dense_networks(name, options):
    """An independent count: torch's FlopCounterMode (2 FLOPs per multiply-accumulate) sees
    every conv, linear and matrix product, the cross-stitch sums included."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    parts = model_parts("small_cnn", {"width": 4})
    model = build_method(name, options).build_network(parts, TASKS).eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 16, 16))
    assert complexity(model, (3, 16, 16))["macs"] == counter.get_total_flops() // 2
