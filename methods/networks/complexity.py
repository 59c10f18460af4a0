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
def weight_uses(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """How many times each weight of each conv/linear layer is multiplied for one input of
    ``input_shape`` (C, H, W): its layer's output positions (a layer called twice counts twice).
    A layer's MACs are its weight count times this, which also holds when only the nonzero
    weights are counted."""
    uses: dict[str, int] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, _inputs, output: torch.Tensor) -> None:
            per_channel = output.numel() // output.shape[0] // module.weight.shape[0]
            uses[name] = uses.get(name, 0) + per_channel

        return hook

    handles = [
        module.register_forward_hook(hook_for(f"{name}.weight" if name else "weight"))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
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
    return uses


@torch.no_grad()
def mixing_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of modules that multiply outside conv and linear layers for one input of
    ``input_shape``: each declares them with ``macs(inputs, output)`` (a cross-stitch unit's
    weighted sum over tasks). Their weights are never pruned."""
    total = 0

    def hook(module: nn.Module, inputs, output) -> None:
        nonlocal total
        total += module.macs(inputs, output) // output.shape[0]

    handles = [m.register_forward_hook(hook) for m in model.modules() if hasattr(m, "macs")]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(MACs, MACs of nonzero weights) of conv and linear layers and of the modules that declare
    their own (``mixing_macs``) for one input of ``input_shape`` (C, H, W). Element-wise work
    (BN, activations, attention masks) is not counted."""
    macs = nonzero = mixing_macs(model, input_shape)
    for name, count in weight_uses(model, input_shape).items():
        weight = model.get_parameter(name)
        macs += weight.numel() * count
        nonzero += int((weight != 0).sum()) * count
    return macs, nonzero


def complexity(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    params, params_nonzero = count_parameters(model)
    macs, macs_nonzero = count_macs(model, input_shape)
    return {
        "params": params,
        "params_nonzero": params_nonzero,
        "macs": macs,
        "macs_nonzero": macs_nonzero,
    }
