"""Model size and cost: parameters and multiply-accumulates, dense and counting only nonzeros."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all parameters, nonzero parameters)."""
    total = sum(p.numel() for p in model.parameters())
    nonzero = sum(int((p != 0).sum()) for p in model.parameters())
    return total, nonzero


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(MACs, MACs of nonzero weights) of conv and linear layers for one input of
    ``input_shape`` (C, H, W). Element-wise work (BN, activations, stitching) is not counted."""
    totals = [0, 0]

    def hook(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        weight = module.weight
        per_output = weight[0].numel() if isinstance(module, nn.Conv2d) else weight.shape[1]
        outputs = output.numel() // output.shape[0]
        macs = outputs * per_output
        totals[0] += macs
        totals[1] += round(macs * float((weight != 0).float().mean()))

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return totals[0], totals[1]


def complexity(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    params, params_nonzero = count_parameters(model)
    macs, macs_nonzero = count_macs(model, input_shape)
    return {
        "params": params,
        "params_nonzero": params_nonzero,
        "macs": macs,
        "macs_nonzero": macs_nonzero,
    }
