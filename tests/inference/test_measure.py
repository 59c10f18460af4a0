"""Inference measurements on tiny inputs: bytes and peak memory against hand counts, the sparse
format's round trip, the ratio statistic, and which kernel a model's compression uses."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from benchmarks.inference.cost import kernel_of
from benchmarks.inference.measure import (
    dense_from_sparse,
    median_ratio,
    peak_forward_bytes,
    serialized_bytes,
    sparse_state_dict,
    storage_sizes,
)
from methods.masks import DENSE_COUNTS_ATTRIBUTE


def test_peak_memory_counts_weights_input_and_live_intermediates():
    torch.manual_seed(0)
    # weights 4*3 + 3 floats (60 B), input 2x4 (32 B), output 2x3 (24 B)
    assert peak_forward_bytes(nn.Linear(4, 3), torch.zeros(2, 4)) == 60 + 32 + 24
    # weights (32 + 8 + 16 + 2) floats = 232 B, input 32 B; the first layer's 2x8 output (64 B)
    # is alive while ReLU writes its own (64 B): the peak; the last output (16 B) comes later
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert peak_forward_bytes(model, torch.zeros(2, 4)) == 232 + 32 + 64 + 64


def test_sparse_state_dict_round_trips_and_stores_nonzeros_plus_a_bitmap():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16))
    with torch.no_grad():
        weight = model[0].weight
        weight[torch.rand_like(weight) < 0.9] = 0
    sparse = sparse_state_dict(model)
    entry = sparse["0.weight"]
    assert entry["values"].numel() == int((weight != 0).sum())
    assert entry["bitmap"].numel() == (weight.numel() + 7) // 8
    assert isinstance(sparse["0.bias"], torch.Tensor)  # biases and BN stay plain
    restored = dense_from_sparse(sparse)
    assert all(torch.equal(restored[k], v) for k, v in model.state_dict().items())
    sizes = storage_sizes(model)
    assert sizes["state_dict_bytes"] == len(serialized_bytes(model.state_dict()))
    # 1152 floats dense; about 115 nonzeros x 4 B + 144 B of bitmap sparse
    assert sizes["sparse_state_dict_bytes"] < sizes["state_dict_bytes"] - 3000
    torch.load(io.BytesIO(serialized_bytes(sparse)), weights_only=True)  # loads without pickle


def test_median_ratio_is_the_median_of_per_round_ratios():
    assert median_ratio([2.0, 1.0, 9.0], [1.0, 1.0, 3.0]) == 2.0  # ratios 2, 1, 3
    with pytest.raises(ValueError):
        median_ratio([1.0], [1.0, 2.0])


def test_kernel_names_what_exploits_the_compression():
    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    assert kernel_of(model) == "none (dense model)"
    with torch.no_grad():
        model[0].weight[0] = 0
    assert kernel_of(model) == "none (masks on dense kernels)"
    setattr(model, DENSE_COUNTS_ATTRIBUTE, {"0.weight": 200})
    assert kernel_of(model) == "dense kernels (channels removed)"
