"""Every registered method honours the contract: config file, exact sparsity, determinism,
zeros that survive training."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from benchmarks.cell import options
from benchmarks.sweep import CONF_DIR, load_method_config
from benchmarks.training import train
from methods.masks import MaskSet, measure_sparsity, prunable_parameters
from methods.networks import get_backbone
from methods.registry import MethodKind, TrainingState, build_method, get_method, list_methods
from tests.conftest import TINY_PROTOCOL, make_context

METHODS = list_methods()


def masks_for(name, tiny_tasks, tiny_bundle, sparsity, seed=0) -> MaskSet:
    config = load_method_config(name)
    method = build_method(name, options(config))
    torch.manual_seed(seed)
    model = method.build_network(get_backbone("small_cnn", {"width": 4}), tiny_tasks)
    ctx = make_context(model, tiny_bundle, sparsity, seed)
    return method.make_masks(ctx), model, method, ctx


def test_every_method_config_file_names_a_registered_method():
    files = {p.stem for p in (CONF_DIR / "method").glob("*.yaml")} - {"all"}
    assert files == set(METHODS)
    for name in METHODS:
        assert load_method_config(name)["name"] == name


@pytest.mark.parametrize("name", METHODS)
def test_method_declares_kind_paper_and_typed_options(name):
    cls = get_method(name)
    assert isinstance(cls.kind, MethodKind)
    assert cls.paper
    with pytest.raises(ValueError, match=f"method={name}: unknown option"):
        build_method(name, {"no_such_option": 1})


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_method_hits_the_requested_sparsity_exactly(name, sparsity, tiny_tasks, tiny_bundle):
    masks, model, _, _ = masks_for(name, tiny_tasks, tiny_bundle, sparsity)
    assert set(masks.masks) == set(prunable_parameters(model))
    expected = (
        sparsity
        if get_method(name).kind not in (MethodKind.DENSE, MethodKind.ARCHITECTURE)
        else 0.0
    )
    assert abs(masks.sparsity() - expected) < 0.001


@pytest.mark.parametrize("name", METHODS)
def test_method_is_deterministic_for_a_seed(name, tiny_tasks, tiny_bundle):
    a = masks_for(name, tiny_tasks, tiny_bundle, 0.8, seed=3)[0]
    b = masks_for(name, tiny_tasks, tiny_bundle, 0.8, seed=3)[0]
    assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)


@pytest.mark.parametrize("name", METHODS)
def test_method_trains_with_its_masks_and_keeps_zeros(name, tiny_tasks, tiny_bundle):
    masks, model, method, ctx = masks_for(name, tiny_tasks, tiny_bundle, 0.9)
    protocol = replace(TINY_PROTOCOL, eval_every=3, log_every=1)
    after_backward = None
    if method.kind == MethodKind.DYNAMIC:  # every step is an update step here

        def after_backward(step, optimizer, batch):
            method.after_backward(25, 100, TrainingState(ctx, masks, optimizer, batch))

    logged = []
    train(
        model,
        masks,
        ctx.batches(3),
        tiny_bundle.tasks,
        {},
        protocol,
        3,
        validate=lambda: {"x": 0.0},
        sink=lambda m, s: logged.append(s),
        after_backward=after_backward,
    )
    for n, mask in masks.masks.items():
        assert torch.all(model.get_parameter(n)[~mask] == 0)
    expected = 0.9 if method.prunes else 0.0
    assert abs(measure_sparsity(model)["overall"] - expected) < 0.001
    assert logged  # losses and validation were reported


def test_unknown_method_lists_the_registered_ones():
    with pytest.raises(KeyError, match="registered methods: .*snip"):
        get_method("snap")
