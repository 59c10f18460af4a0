"""A run's inference cost: its final model against the same setting's dense (hard-sharing)
network, measured side by side in the run's own process (``benchmarks.inference.measure``).

Metrics (a run logs them under ``inference/``; parameters and MACs are its ``model/`` metrics):
- ``state_dict_mb``, ``state_dict_gzip_mb``, ``sparse_state_dict_mb``: the model's state dict
  as saved, gzipped (level 6), and with pruned weights stored as nonzeros plus a bitmap;
- ``latency_b1_ms``, ``latency_b8_ms``: median milliseconds per forward pass at batch 1 and 8;
  ``latency_ratio_b1``, ``latency_ratio_b8``: against the dense network timed interleaved with
  it (median of per-round ratios), with ``_low`` / ``_high`` its 95% interval, ``_rounds`` the
  rounds timed, ``latency_control_b1`` / ``_b8`` the ratio of an identical copy of the dense
  network timed in the same rounds, and ``latency_noisy_b1`` / ``_b8`` 1 when that control is
  off 1 by more than ``CONTROL_TOLERANCE`` (the pass cannot tell such differences), else 0;
- ``peak_memory_b8_mb`` and ``peak_memory_ratio_b8``: peak memory of one batch-8 forward pass;
- ``macs_ratio``, ``params_ratio``: MACs executed and parameters stored, against dense.
Tags: ``input`` (the image shape measured at, CxHxW), ``kernel`` (what exploits the
compression: ``dense kernels (channels removed)``, ``none (masks on dense kernels)`` or ``none
(dense model)``), ``device``, ``threads``.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable

import torch
from torch import nn

from benchmarks.inference.measure import (
    DEFAULT_PLAN,
    LatencyPlan,
    LatencyRatio,
    interleaved_latency,
    peak_forward_bytes,
    storage_sizes,
)
from methods.masks import DENSE_COUNTS_ATTRIBUTE, prunable_parameters
from methods.networks.complexity import count_macs, count_parameters

BATCH_SIZES = (1, 8)
MEMORY_BATCH = 8
MB = 1e6
INPUT_SEED = 0


STRUCTURED_KERNEL = "dense kernels (channels removed)"
MASKED_KERNEL = "none (masks on dense kernels)"
DENSE_KERNEL = "none (dense model)"


def kernel_of(model: nn.Module) -> str:
    """Which kernel turns the model's compression into speed."""
    if getattr(model, DENSE_COUNTS_ATTRIBUTE, None) is not None:
        return STRUCTURED_KERNEL
    if any(bool((p == 0).any()) for p in prunable_parameters(model).values()):
        return MASKED_KERNEL
    return DENSE_KERNEL


def narrow(width: float) -> Callable[[dict[str, list[float]]], bool]:
    """Whether the model's ratio interval is within ``width`` of the ratio (rounds may stop)."""

    def settled(times: dict[str, list[float]]) -> bool:
        ratio = LatencyRatio.from_rounds(times["model"], times["dense"], times["control"])
        return ratio.relative_width <= width

    return settled


def latency_metrics(latency: LatencyRatio, suffix: str) -> dict[str, float]:
    """The ``inference/`` metrics of one batch size's latency."""
    return {
        f"latency_ratio{suffix}": latency.ratio,
        f"latency_ratio{suffix}_low": latency.low,
        f"latency_ratio{suffix}_high": latency.high,
        f"latency_ratio{suffix}_rounds": float(latency.rounds),
        f"latency_control{suffix}": latency.control,
        f"latency_noisy{suffix}": float(latency.noisy),
    }


def inference_cost(
    model: nn.Module,
    dense: nn.Module,
    image_shape: tuple[int, ...],
    device: torch.device,
    plan: LatencyPlan = DEFAULT_PLAN,
) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, tags) of ``model`` against the dense network ``dense`` of its setting."""
    was_training = model.training
    control = copy.deepcopy(dense)
    metrics = {k.replace("_bytes", "_mb"): v / MB for k, v in storage_sizes(model).items()}
    generator = torch.Generator().manual_seed(INPUT_SEED)
    for batch in BATCH_SIZES:
        x = torch.randn((batch, *image_shape), generator=generator).to(device)
        models = {"model": model, "dense": dense, "control": control}
        times = interleaved_latency(models, x, plan, settled=narrow(plan.target_width))
        latency = LatencyRatio.from_rounds(times["model"], times["dense"], times["control"])
        metrics[f"latency_b{batch}_ms"] = statistics.median(times["model"]) * 1e3
        metrics.update(latency_metrics(latency, f"_b{batch}"))
        if batch == MEMORY_BATCH:
            peak, dense_peak = peak_forward_bytes(model, x), peak_forward_bytes(dense, x)
            metrics[f"peak_memory_b{batch}_mb"] = peak / MB
            metrics[f"peak_memory_ratio_b{batch}"] = peak / dense_peak
    metrics["macs_ratio"] = count_macs(model, image_shape)[0] / count_macs(dense, image_shape)[0]
    metrics["params_ratio"] = count_parameters(model)[0] / count_parameters(dense)[0]
    model.train(was_training)
    tags = {
        "input": "x".join(str(n) for n in image_shape),
        "kernel": kernel_of(model),
        "device": str(device),
        "threads": str(torch.get_num_threads()),
    }
    return metrics, tags
