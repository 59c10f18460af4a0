"""Dedicated multitask architectures: shapes, ownership, initialisation, attention range, cost."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.tasks import make_task
from methods.lifecycle import MethodKind
from methods.masks import prunable_parameters
from methods.networks import SHARED, get_backbone
from methods.networks.complexity import complexity
from methods.registry import build_method, list_methods

TASKS = (make_task("seg", num_classes=7), make_task("normal"), make_task("depth"))
ARCHITECTURES = ["single_task", "cross_stitch", "mtan", "nddr_cnn"]


def network(name, tasks=TASKS, width=4):
    torch.manual_seed(0)
    return build_method(name, {}).build_network(get_backbone("small_cnn", {"width": width}), tasks)


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
    hard = build_method("dense", {}).build_network(get_backbone("small_cnn", {"width": 4}), TASKS)
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


def test_mtan_attention_masks_lie_in_unit_interval_and_modules_belong_to_their_task():
    model = network("mtan")
    owners = model.parameter_owners()
    assert owners["encoder.0.0.weight"] == SHARED
    assert owners["attention.depth.1.gate.0.weight"] == "depth"
    shared = torch.randn(2, 8, 8, 12) * 10
    previous = torch.randn(2, 4, 16, 24) * 10
    attended, mask = model.attention["seg"][1](shared, previous)
    assert mask.min() >= 0 and mask.max() <= 1
    assert torch.allclose(attended, mask * shared)


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
    backbone = get_backbone("deeplab_resnet34", {})
    model = build_method(name, {}).build_network(backbone, TASKS[:2])
    out = model(torch.randn(1, 3, 24, 24))
    assert out["seg"].shape == (1, 7, 24, 24) and out["normal"].shape == (1, 3, 24, 24)
    owners = model.parameter_owners()
    assert set(owners) == {n for n, _ in model.named_parameters()}
