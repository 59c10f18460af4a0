"""What a model costs at inference, measured: bytes on disk (plain, gzipped, sparse), latency
against a reference model timed interleaved in one process, and peak memory of a forward pass.

Latency: every round times each model in a fresh random order (each timing repeats the forward
pass until it lasts ``min_time_s``), and a model's ratio is the median over rounds of its time
divided by the reference's time in the same round, so drift in the machine's speed (another
process, the clock) cancels instead of landing on one model. Rounds go on until the ratio's
distribution-free 95% interval is narrow or a bound is reached (``LatencyPlan``), and an
identical copy of the reference timed in the same rounds is the control: when its ratio is off
1 by more than ``CONTROL_TOLERANCE`` the pass was too noisy to tell (``LatencyRatio.noisy``).
On CUDA each timing is synchronised. Peak memory on the CPU: the largest sum of live tensor
storages during the forward (weights, input and every intermediate, counted at the operator
level: kernels' private scratch space is not seen); on CUDA the rise of
``torch.cuda.max_memory_allocated`` during the forward plus the weights and the input, so
tensors other work left on the device do not count.
"""

from __future__ import annotations

import gzip
import io
import math
import random
import statistics
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from core.state import cpu_state_dict
from methods.masks import prunable_parameters

GZIP_LEVEL = 6


def serialized_bytes(state: Mapping[str, object]) -> bytes:
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return buffer.getvalue()


def sparse_state_dict(model: nn.Module) -> dict[str, object]:
    """The state dict with every prunable weight that has zeros stored as its nonzero values plus
    a bitmap of where they sit (``dense_from_sparse`` rebuilds the plain one)."""
    state: dict[str, object] = {}
    prunable = set(prunable_parameters(model))
    for name, value in cpu_state_dict(model).items():
        nonzero = value != 0
        if name in prunable and not bool(nonzero.all()):
            bitmap = np.packbits(nonzero.flatten().numpy())
            state[name] = {
                "shape": tuple(value.shape),
                "values": value[nonzero].clone(),
                "bitmap": torch.from_numpy(bitmap),
            }
        else:
            state[name] = value
    return state


def dense_from_sparse(state: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """The plain state dict of a ``sparse_state_dict``."""
    dense: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if isinstance(value, dict):
            numel = int(np.prod(value["shape"]))
            flags = np.unpackbits(value["bitmap"].numpy(), count=numel).astype(bool)
            where = torch.from_numpy(flags)
            flat = torch.zeros(numel, dtype=value["values"].dtype)
            flat[where] = value["values"]
            dense[name] = flat.reshape(value["shape"])
        else:
            dense[name] = value
    return dense


def storage_sizes(model: nn.Module) -> dict[str, float]:
    """Bytes of the state dict as saved, gzipped, and in the sparse format."""
    plain = serialized_bytes(cpu_state_dict(model))
    return {
        "state_dict_bytes": float(len(plain)),
        "state_dict_gzip_bytes": float(len(gzip.compress(plain, compresslevel=GZIP_LEVEL))),
        "sparse_state_dict_bytes": float(len(serialized_bytes(sparse_state_dict(model)))),
    }


class _LiveStorage(TorchDispatchMode):
    """Tracks the bytes of tensor storages alive while operators run, and their peak. The
    ``resident`` tensors (weights, input) count from the start and are never released."""

    def __init__(self, resident: list[torch.Tensor]):
        super().__init__()
        self._refs: dict[int, list[int]] = {}  # storage address -> [tensors alive, bytes]
        self.live = self.peak = 0
        for tensor in resident:
            self._hold(tensor)

    def _hold(self, tensor: torch.Tensor) -> int:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self._refs:
            self._refs[key][0] += 1
        else:
            self._refs[key] = [1, storage.nbytes()]
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        return key

    def _release(self, key: int) -> None:
        entry = self._refs[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                weakref.finalize(tensor, self._release, self._hold(tensor))
        return out


@torch.inference_mode()
def peak_forward_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Peak bytes in use during ``model(x)``: weights, buffers, the input and live
    intermediates."""
    model.eval()
    resident = [*model.state_dict().values(), x]
    if x.is_cuda:  # what the forward adds on top of what was allocated, plus weights and input
        torch.cuda.synchronize(x.device)
        before = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        model(x)
        torch.cuda.synchronize(x.device)
        added = torch.cuda.max_memory_allocated(x.device) - before
        return int(added + sum(t.untyped_storage().nbytes() for t in resident))
    tracker = _LiveStorage(resident)
    with tracker:
        model(x)
    return tracker.peak


@dataclass(frozen=True)
class LatencyPlan:
    """How latency is timed: rounds in random order, each timing at least ``min_time_s``; at
    least ``min_rounds``, then more until the ratio's interval is within ``target_width`` of the
    ratio or ``max_rounds`` are done. ``max_seconds`` bounds it all: past it, timing stops after
    the round under way once there are two (a big network on a CPU, where one round takes
    seconds, never spends minutes here; its ``_rounds`` and wide interval say so)."""

    min_rounds: int = 5
    max_rounds: int = 25
    target_width: float = 0.10
    max_seconds: float = 10.0
    min_time_s: float = 0.01
    seed: int = 0  # the order of the models in each round


DEFAULT_PLAN = LatencyPlan()
MIN_ROUNDS_IN_TIME = 2  # the fewest rounds the time bound leaves: one ratio has no spread
CONTROL_TOLERANCE = 0.10  # a dense-vs-dense control further than this from 1 marks the pass
CONFIDENCE = 0.95


def median_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free interval of the median: the order statistics ``[x_(j), x_(n+1-j)]``
    with the largest ``j`` whose coverage ``1 - 2 P(Binomial(n, 1/2) < j)`` is at least
    ``confidence`` (min and max when no ``j`` reaches it: five values give 93.75%)."""
    ordered, n = sorted(values), len(values)
    j, below = 1, 0.0  # below: P(B <= j - 1)
    while j < (n + 1) / 2:
        below_next = below + math.comb(n, j) / 2**n  # P(B <= j)
        if 1 - 2 * below_next < confidence:
            break
        j, below = j + 1, below_next
    return ordered[j - 1], ordered[n - j]


@dataclass(frozen=True)
class LatencyRatio:
    """A model's latency against the reference timed in the same rounds: the median of the
    per-round ratios, its interval, and the same for an identical copy of the reference (the
    control: about 1 on a quiet machine). ``noisy``: the control is off by more than
    ``CONTROL_TOLERANCE``, so the machine's noise is as large as the effects measured."""

    ratio: float
    low: float
    high: float
    control: float
    rounds: int

    @property
    def noisy(self) -> bool:
        return abs(self.control - 1.0) > CONTROL_TOLERANCE

    @property
    def relative_width(self) -> float:
        return (self.high - self.low) / self.ratio

    @classmethod
    def from_rounds(
        cls, times: list[float], reference: list[float], control: list[float]
    ) -> LatencyRatio:
        ratios = [t / r for t, r in zip(times, reference, strict=True)]
        low, high = median_interval(ratios)
        return cls(
            statistics.median(ratios),
            low,
            high,
            median_ratio(control, reference),
            len(ratios),
        )


def _synchronize(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


def _time_once(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    _synchronize(x)
    start = time.perf_counter()
    for _ in range(repeats):
        model(x)
    _synchronize(x)
    return (time.perf_counter() - start) / repeats


@torch.inference_mode()
def interleaved_latency(
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    plan: LatencyPlan | None = None,
    settled: Callable[[dict[str, list[float]]], bool] | None = None,
) -> dict[str, list[float]]:
    """Seconds per forward pass of each model on ``x``, one entry per round: ``min_rounds``,
    then more until ``settled(times)`` says so, or fewer when ``max_seconds`` run out."""
    plan = plan or DEFAULT_PLAN
    started = time.perf_counter()
    for model in models.values():
        model.eval()
    repeats = {}
    for name, model in models.items():
        _time_once(model, x, 1)  # warm-up
        once = max(_time_once(model, x, 1), 1e-9)
        repeats[name] = max(1, math.ceil(plan.min_time_s / once))
    order, times = list(models), {name: [] for name in models}
    rng = random.Random(plan.seed)
    for done in range(1, plan.max_rounds + 1):
        rng.shuffle(order)
        for name in order:
            times[name].append(_time_once(models[name], x, repeats[name]))
        out_of_time = time.perf_counter() - started > plan.max_seconds
        if (done >= MIN_ROUNDS_IN_TIME and out_of_time) or (
            done >= plan.min_rounds and (settled is None or settled(times))
        ):
            break
    return times


def median_ratio(times: list[float], reference: list[float]) -> float:
    """Median over rounds of the per-round ratio."""
    return statistics.median(t / r for t, r in zip(times, reference, strict=True))
