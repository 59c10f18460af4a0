"""bf16 autocast and channels-last training keep pruned weights exactly zero (CPU here; the same
test runs on CUDA where a GPU exists)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmarks.training.loop import Objective, Phase, train
from benchmarks.training.stream import BatchStream
from methods.budgets import masks_from_scores
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.networks import hard_sharing_network
from tests.helpers import TINY_PROTOCOL

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ],
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("amp", "channels_last"), [("bf16", False), ("none", True), ("bf16", True)]
)
def test_masked_weights_stay_zero_under_autocast_and_channels_last(
    tiny_tasks, tiny_bundle, device, amp, channels_last
):
    torch.manual_seed(0)
    model = hard_sharing_network("small_cnn", {"width": 4}, tiny_tasks).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = prunable_parameters(model)
    scores = {n: torch.rand_like(p) for n, p in params.items()}
    masks = MaskSet(masks_from_scores(scores, 0.8, "global"), owners_of(model, params)).to(device)
    before = {n: p.detach().clone() for n, p in params.items()}
    protocol = dataclasses.replace(TINY_PROTOCOL, amp=amp, channels_last=channels_last)
    stream = BatchStream(
        tiny_bundle.splits["train"], 4, torch.Generator().manual_seed(0), torch.device(device)
    )
    seen = []
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda module, args, out: seen.append(out))
    train(model, masks, stream, Objective(tiny_bundle.tasks), protocol, Phase(5))
    expected = torch.bfloat16 if amp == "bf16" else torch.float32
    assert seen[0].dtype == expected
    assert seen[0].is_contiguous(memory_format=torch.channels_last) == channels_last
    for name, param in params.items():
        assert param.dtype == torch.float32  # autocast computes in bf16, weights stay float32
        pruned = ~masks.masks[name]
        assert torch.count_nonzero(param.detach()[pruned]) == 0, name
    changed = sum(int((params[n].detach() != before[n]).sum()) for n in params)
    assert changed > 0.5 * masks.num_kept()  # the kept weights did train
