"""Health of a pruned network: layers pruned away and tasks cut off from the input.

Saliency methods at high sparsity can empty a whole layer (layer collapse, Tanaka et al. 2020) or
leave a task's output with no path of surviving weights from the input. Both are structural facts
of the masks, computed here without data:

- ``collapsed_layers``: prunable tensors with no surviving weight; ``min_layer_density``.
- ``disconnected_tasks``: tasks whose output no path of kept weights reaches. Counted by a
  forward pass of a float64 copy in which every kept weight is 1, every pruned one 0, every
  other parameter (biases, BatchNorm, mixing weights) is made non-negative and BatchNorm uses
  unit statistics, on an all-ones input: the output of a task is then positive exactly when some
  path of kept weights leads to it (ReLU, pooling, attention and sums keep positive values
  positive, and zeros stay zero only where no path arrives).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from methods.masks import MaskSet


def collapsed_layers(masks: MaskSet) -> list[str]:
    return [name for name, mask in masks.masks.items() if not bool(mask.any())]


def min_layer_density(masks: MaskSet) -> float:
    return min(float(mask.float().mean()) for mask in masks.masks.values())


@torch.no_grad()
def disconnected_tasks(model: nn.Module, masks: MaskSet, input_shape: tuple[int, ...]) -> list[str]:
    """Tasks with no path of kept weights from the input to their output."""
    work = copy.deepcopy(model).double().eval()
    for name, param in work.named_parameters():
        if name in masks.masks:
            param.copy_(masks.masks[name].to(param.device, param.dtype))
        elif name.endswith("bias"):
            param.zero_()
        else:
            param.abs_()  # BatchNorm scale, mixing and attention weights: keep paths positive
    for module in work.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
            if module.weight is not None:
                module.weight.fill_(1.0)
    device = next(work.parameters()).device
    outputs = work(torch.ones((1, *input_shape), dtype=torch.float64, device=device))
    return [task for task, out in outputs.items() if not bool((out > 0).any())]


def health_report(
    model: nn.Module, masks: MaskSet, input_shape: tuple[int, ...]
) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, tags): counts and the smallest layer density; names of what is broken."""
    collapsed = collapsed_layers(masks)
    cut_off = disconnected_tasks(model, masks, input_shape)
    metrics = {
        "health/collapsed_layers": float(len(collapsed)),
        "health/min_layer_density": min_layer_density(masks),
        "health/disconnected_tasks": float(len(cut_off)),
    }
    tags = {"health/collapsed": ",".join(collapsed), "health/disconnected": ",".join(cut_off)}
    return metrics, tags
