"""A run's inference figures on real models, checked where they are deterministic: parameters and
MACs executed, bytes stored, the kernel label, and that each latency ratio was measured (finite,
positive, one per batch size). How fast a model runs is never asserted here: on a busy machine a
timing threshold fails at random. The measured ratios come from ``python -m benchmarks.perf
--inference``."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.inference.cost import BATCH_SIZES, MASKED_KERNEL, STRUCTURED_KERNEL, inference_cost
from benchmarks.inference.measure import LatencyPlan, storage_sizes
from methods.masks import prunable_parameters
from methods.networks import model_parts
from methods.networks.complexity import count_macs, count_parameters
from methods.registry import build_method

SHAPE = (3, 48, 64)  # the default sweep's images
QUICK = LatencyPlan(
    min_rounds=2, max_rounds=2, min_time_s=0.0
)  # measured, not meaningful: nothing asserts speed


def small_cnn(tasks):
    return model_parts("small_cnn", {}).hard_sharing(tasks)


def assert_latency_measured(metrics: dict[str, float]) -> None:
    for batch in BATCH_SIZES:
        for key in (f"latency_b{batch}_ms", f"latency_ratio_b{batch}"):
            assert math.isfinite(metrics[key]) and metrics[key] > 0, key


def flop_count(model: torch.nn.Module, x: torch.Tensor) -> int:
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def test_channel_pruned_network_stores_and_executes_what_its_layers_hold(
    tiny_tasks, context_factory
):
    torch.manual_seed(0)
    dense, model = small_cnn(tiny_tasks), small_cnn(tiny_tasks)
    build_method("channel_magnitude", {}).make_masks(context_factory(model, 0.5))
    metrics, tags = inference_cost(model, dense, SHAPE, torch.device("cpu"), QUICK)
    # independent counts: parameters from the tensors, MACs from torch's FLOP counter
    kept = sum(p.numel() for p in model.parameters())
    assert metrics["params_ratio"] == kept / sum(p.numel() for p in dense.parameters())
    assert metrics["params_ratio"] < 0.6
    x = torch.zeros((1, *SHAPE))
    assert metrics["macs_ratio"] == pytest.approx(flop_count(model, x) / flop_count(dense, x))
    assert metrics["macs_ratio"] < 0.6
    dense_mb = storage_sizes(dense)["state_dict_bytes"] / 1e6
    assert metrics["state_dict_mb"] < 0.6 * dense_mb
    assert tags["kernel"] == STRUCTURED_KERNEL
    assert_latency_measured(metrics)


def test_unstructured_mask_executes_every_mac_but_stores_a_smaller_sparse_file(tiny_tasks):
    torch.manual_seed(0)
    dense, model = small_cnn(tiny_tasks), small_cnn(tiny_tasks)
    with torch.no_grad():
        for weight in prunable_parameters(model).values():
            weight[torch.rand_like(weight) < 0.9] = 0
    metrics, tags = inference_cost(model, dense, SHAPE, torch.device("cpu"), QUICK)
    assert metrics["macs_ratio"] == 1.0 and metrics["params_ratio"] == 1.0
    assert count_parameters(model)[0] == count_parameters(dense)[0]
    assert count_macs(model, SHAPE)[0] == count_macs(dense, SHAPE)[0]
    assert metrics["sparse_state_dict_mb"] < 0.4 * metrics["state_dict_mb"]
    assert tags["kernel"] == MASKED_KERNEL
    assert_latency_measured(metrics)
