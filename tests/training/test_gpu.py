"""CUDA checks (run where a GPU exists; skipped elsewhere): every method's masks, the masked
training loop and the metrics on the GPU, and agreement with the CPU."""

from __future__ import annotations

import copy

import pytest
import torch

from benchmarks.cells.cell import options
from benchmarks.cells.method_configs import load_method_config
from benchmarks.training.evaluation import evaluate
from methods.masks import measure_sparsity
from methods.networks import hard_sharing_network
from methods.registry import build_method, list_methods
from tests.helpers import make_context, run_lifecycle

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def method_from_config(name):
    config = load_method_config(name)
    return build_method(name, options(config))


def model_on(device, tiny_tasks, seed=0):
    torch.manual_seed(seed)
    return hard_sharing_network("small_cnn", {"width": 4}, tiny_tasks).to(device)


@pytest.mark.parametrize("name", list_methods())
def test_method_lifecycle_on_cuda(name, tiny_tasks, tiny_bundle):
    masks, model, method = run_lifecycle(name, tiny_tasks, tiny_bundle, 0.9, device="cuda")
    assert all(m.device.type == "cuda" for m in masks.masks.values())
    expected = 0.9 if method.prunes else 0.0
    assert abs(measure_sparsity(model)["overall"] - expected) < 0.001


@pytest.mark.parametrize("name", ["magnitude", "snip", "disparse_static", "grasp"])
def test_cuda_masks_agree_with_cpu(name, tiny_tasks, tiny_bundle):
    cpu_model = model_on("cpu", tiny_tasks)
    gpu_model = copy.deepcopy(cpu_model).to("cuda")
    method = method_from_config(name)
    cpu = method.make_masks(make_context(cpu_model, tiny_bundle, 0.8))
    gpu = method.make_masks(make_context(gpu_model, tiny_bundle, 0.8, device="cuda"))
    same = sum(int((cpu.masks[n] == gpu.masks[n].cpu()).sum()) for n in cpu.masks)
    assert same / cpu.num_total() > 0.99  # float rounding may swap weights at the threshold


def test_metrics_on_cuda_match_cpu(tiny_tasks, tiny_bundle):
    cpu_model = model_on("cpu", tiny_tasks)
    gpu_model = copy.deepcopy(cpu_model).to("cuda")
    split = tiny_bundle.splits["test"]
    on_cpu = evaluate(cpu_model, split, tiny_bundle.tasks, torch.device("cpu"), 4)
    on_gpu = evaluate(gpu_model, split, tiny_bundle.tasks, torch.device("cuda"), 4)
    for key, value in on_cpu.items():
        assert on_gpu[key] == pytest.approx(value, rel=1e-3, abs=1e-3), key


def test_cuda_peak_memory_counts_the_forward_not_what_else_is_on_the_device():
    """Issue 25: a cell's other tensors (optimiser state, cached batches) were counted in the
    inference figure. 256 MB left on the device must not move it."""
    from torch import nn

    from benchmarks.inference.measure import peak_forward_bytes

    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 8)).cuda()
    x = torch.zeros(64, 256, device="cuda")
    peak_forward_bytes(model, x)  # warm-up: cuBLAS allocates its workspace once, on first use
    alone = peak_forward_bytes(model, x)
    other_work = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    assert peak_forward_bytes(model, x) == alone
    del other_work
    on_cpu = peak_forward_bytes(model.cpu(), x.cpu())
    assert on_cpu <= alone < on_cpu + 2**20  # the caching allocator rounds blocks up
