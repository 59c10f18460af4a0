"""Every registered method honours the contract: config file, exact sparsity at the end of its
lifecycle (structured methods: within a point, their granularity is a channel), determinism,
zeros that survive training. The lifecycle is run as the runner runs it:
``make_masks``, training with ``on_backward`` after every backward pass, then ``finish``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from benchmarks import CONF_DIR
from benchmarks.cells.method_configs import load_method_config
from methods.channel_pruning import CHANNEL_TOLERANCE
from methods.lifecycle import MethodKind
from methods.masks import measure_sparsity, prunable_parameters
from methods.networks import model_parts
from methods.registry import build_method, get_method, list_methods
from tests.helpers import LIFECYCLE_STEPS, make_context, method_for, run_lifecycle

METHODS = list_methods()


def test_every_method_config_file_names_a_registered_method():
    files = {p.stem for p in (CONF_DIR / "method").glob("*.yaml")} - {"all"}
    assert files == set(METHODS)
    for name in METHODS:
        assert load_method_config(name)["name"] == name


@pytest.mark.parametrize("name", METHODS)
def test_method_declares_kind_paper_and_typed_options(name):
    cls = get_method(name)
    assert isinstance(cls.kind, MethodKind), f"{name}: subclass a kind base of methods.lifecycle"
    assert cls.paper, f"{name}: set the class attribute `paper` to its reference"
    if cls.kind == MethodKind.STATIC:
        fields = {f.name for f in dataclasses.fields(cls.Options)}
        assert "sanity" in fields, (
            f"{name}: mix methods.sanity.SanityOptions into its Options (first among the bases) "
            "so experiment=sanity runs its ablations"
        )
    with pytest.raises(ValueError, match=f"method={name}: unknown option"):
        build_method(name, {"no_such_option": 1})


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_method_ends_at_the_requested_sparsity_exactly(name, sparsity, tiny_tasks, tiny_bundle):
    logged = []
    masks, model, method = run_lifecycle(name, tiny_tasks, tiny_bundle, sparsity, logged=logged)
    # a training loss at every step, validation at the end
    assert logged == [*range(1, LIFECYCLE_STEPS + 1), LIFECYCLE_STEPS]
    assert set(masks.masks) == set(prunable_parameters(model))
    expected = sparsity if method.prunes else 0.0
    tolerance = CHANNEL_TOLERANCE if method.kind == MethodKind.STRUCTURED else 0.001
    assert abs(masks.sparsity() - expected) < tolerance, f"{name}: sparsity {masks.sparsity()}"
    for n, mask in masks.masks.items():  # the zeros are real and where the masks say
        assert torch.all(model.get_parameter(n)[~mask] == 0)
    assert abs(measure_sparsity(model)["overall"] - masks.sparsity()) < 1e-9


@pytest.mark.parametrize("name", METHODS)
def test_method_is_deterministic_for_a_seed(name, tiny_tasks, tiny_bundle):
    a, model_a, _ = run_lifecycle(name, tiny_tasks, tiny_bundle, 0.8, seed=3)
    b, model_b, _ = run_lifecycle(name, tiny_tasks, tiny_bundle, 0.8, seed=3)
    assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_dynamic_methods_change_their_masks_during_training(tiny_tasks, tiny_bundle):
    for name in METHODS:
        method = method_for(name)
        if method.kind != MethodKind.DYNAMIC:
            continue
        torch.manual_seed(0)
        model = method.build_network(model_parts("small_cnn", {"width": 4}), tiny_tasks)
        start = method.make_masks(make_context(model, tiny_bundle, 0.8)).masks
        end = run_lifecycle(name, tiny_tasks, tiny_bundle, 0.8)[0].masks
        assert any(not torch.equal(start[n], end[n]) for n in start), name


def test_unknown_method_lists_the_registered_ones():
    with pytest.raises(KeyError, match="registered methods: .*snip"):
        get_method("snap")


def test_no_method_file_imports_another_method_file():
    import ast
    import importlib

    method_modules = {get_method(n).__module__ for n in METHODS}
    for module_name in method_modules:
        source = Path(importlib.import_module(module_name).__file__).read_text()
        tree = ast.parse(source)
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not imported & (method_modules - {module_name}), module_name
