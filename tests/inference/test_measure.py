"""Inference measurements on tiny inputs: bytes and peak memory against hand counts, the sparse
format's round trip, the ratio statistic, and which kernel a model's compression uses."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from benchmarks.inference.cost import kernel_of
from benchmarks.inference.measure import (
    CONTROL_TOLERANCE,
    LatencyPlan,
    LatencyRatio,
    dense_from_sparse,
    interleaved_latency,
    median_interval,
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


def test_the_medians_interval_is_the_order_statistics_of_its_binomial_coverage():
    # n = 9: [x(2), x(8)] covers 1 - 2 (1 + 9) / 512 = 96.1%; [x(3), x(7)] only 82.0%
    assert median_interval([9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0]) == (2.0, 8.0)
    # n = 5: even [min, max] covers only 1 - 2 / 32 = 93.75%: the widest is given
    assert median_interval([5.0, 1.0, 4.0, 2.0, 3.0]) == (1.0, 5.0)
    # n = 17: [x(5), x(13)] covers 1 - 2 P(B <= 4) = 95.1%; [x(6), x(12)] 85.7%
    assert median_interval([float(v) for v in range(1, 18)]) == (5.0, 13.0)


def test_a_pass_whose_dense_control_is_off_by_2x_is_marked_and_a_steady_one_is_not():
    """Issue 29 N8, on given per-round timings (seconds): the model against dense, and an
    identical dense copy against dense in the same rounds."""
    dense = [1.0, 1.0, 2.0, 1.0, 1.0]
    model = [0.5, 0.6, 1.0, 0.4, 0.5]  # ratios 0.5, 0.6, 0.5, 0.4, 0.5
    steady = LatencyRatio.from_rounds(model, dense, control=[1.0, 1.1, 2.0, 0.95, 1.0])
    assert (steady.ratio, steady.low, steady.high, steady.rounds) == (0.5, 0.4, 0.6, 5)
    assert steady.control == 1.0 and not steady.noisy
    assert steady.relative_width == pytest.approx(0.4)
    busy = LatencyRatio.from_rounds(model, dense, control=[2.0, 2.2, 4.0, 1.8, 2.0])
    assert busy.control == 2.0 and busy.noisy
    assert abs(LatencyRatio.from_rounds(model, dense, [1.11] * 5).control - 1) > CONTROL_TOLERANCE


def test_rounds_stop_when_settled_and_go_on_to_the_bound_when_not():
    models = {"a": nn.Linear(2, 2), "b": nn.Linear(2, 2)}
    plan = LatencyPlan(min_rounds=3, max_rounds=7, min_time_s=0.0, max_seconds=1e9)
    x = torch.zeros(1, 2)
    seen = []

    def never(times):
        seen.append(len(times["a"]))
        return False

    assert [len(t) for t in interleaved_latency(models, x, plan, never).values()] == [7, 7]
    assert seen == [3, 4, 5, 6, 7]
    settled = interleaved_latency(models, x, plan, lambda times: True)
    assert [len(t) for t in settled.values()] == [3, 3]
    no_time = LatencyPlan(min_rounds=5, max_rounds=7, min_time_s=0.0, max_seconds=0.0)
    cut = interleaved_latency(models, x, no_time, never)  # the bound wins, after two rounds
    assert [len(t) for t in cut.values()] == [2, 2]


def test_kernel_names_what_exploits_the_compression():
    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    assert kernel_of(model) == "none (dense model)"
    with torch.no_grad():
        model[0].weight[0] = 0
    assert kernel_of(model) == "none (masks on dense kernels)"
    setattr(model, DENSE_COUNTS_ATTRIBUTE, {"0.weight": 200})
    assert kernel_of(model) == "dense kernels (channels removed)"


def test_a_noisy_rows_latency_is_marked_in_the_table_and_left_out_of_the_frontier():
    import pandas as pd

    from benchmarks.reporting.plots import frontier_rows
    from benchmarks.reporting.tables import _inference

    table = pd.DataFrame(
        {
            "kind": ["static", "static", "structured"],
            "method": ["magnitude", "snip", "channel_magnitude"],
            "inference/latency_ratio_b1:mean": [1.02, 0.98, 0.61],
            "inference/latency_ratio_b8:mean": [1.01, 0.99, 0.55],
            "inference/latency_noisy_b1:mean": [0.0, 0.5, 0.0],  # one of snip's two seeds
            "inference/latency_noisy_b8:mean": [0.0, 0.0, 0.0],
            "delta_m:mean": [-3.0, -4.0, -9.0],
        }
    )
    assert list(frontier_rows(table)["method"]) == ["magnitude", "channel_magnitude"]
    shown = [_inference(row)[0] for _, row in table.iterrows()]
    assert shown == ["1.02 / 1.01", "0.98 / 0.99 ~", "0.61 / 0.55"]
