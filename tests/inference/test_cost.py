"""A run's inference figures on real models: a channel-pruned network is smaller and faster than
its dense network, an unstructured mask on dense kernels is neither (loose bounds: the real
figures come from ``python -m benchmarks.perf --inference``)."""

from __future__ import annotations

import pytest
import torch

from benchmarks.inference.cost import inference_cost
from methods.masks import prunable_parameters
from methods.networks import get_backbone
from methods.registry import build_method

SHAPE = (3, 48, 64)  # the default sweep's images


@pytest.fixture(autouse=True)
def one_thread():
    """As the default sweep's cells run: timings with two threads on two busy cores swing."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_cnn(tasks):
    return get_backbone("small_cnn", {}).hard_sharing(tasks)


def test_channel_pruned_network_is_smaller_and_faster_than_dense(tiny_tasks, context_factory):
    torch.manual_seed(0)
    dense, model = small_cnn(tiny_tasks), small_cnn(tiny_tasks)
    build_method("channel_magnitude", {}).make_masks(context_factory(model, 0.5))
    metrics, tags = inference_cost(model, dense, SHAPE, torch.device("cpu"))
    assert metrics["params_ratio"] < 0.6
    assert metrics["latency_ratio_b8"] < 0.9
    assert (
        metrics["state_dict_mb"]
        < 0.6
        * inference_cost(dense, small_cnn(tiny_tasks), SHAPE, torch.device("cpu"))[0][
            "state_dict_mb"
        ]
    )
    assert tags["kernel"] == "dense kernels (channels removed)"


def test_unstructured_mask_buys_no_speed_but_a_smaller_sparse_file(tiny_tasks):
    torch.manual_seed(0)
    dense, model = small_cnn(tiny_tasks), small_cnn(tiny_tasks)
    with torch.no_grad():
        for weight in prunable_parameters(model).values():
            weight[torch.rand_like(weight) < 0.9] = 0
    metrics, tags = inference_cost(model, dense, SHAPE, torch.device("cpu"))
    assert 0.8 < metrics["latency_ratio_b1"] < 1.25
    assert metrics["macs_ratio"] == 1.0 and metrics["params_ratio"] == 1.0
    assert metrics["sparse_state_dict_mb"] < 0.4 * metrics["state_dict_mb"]
    assert tags["kernel"] == "none (masks on dense kernels)"
