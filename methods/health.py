"""Health of a pruned network: layers pruned away and tasks cut off from the input.

Saliency methods at high sparsity can empty a whole layer (layer collapse, Tanaka et al. 2020) or
leave a task's output with no path of surviving weights from the input. Both are structural facts
of the masks, computed here without data:

- ``collapsed_layers``: prunable tensors with no surviving weight; ``min_layer_density``.
- ``disconnected_tasks``: tasks whose output no path of kept weights reaches; ``dead_outputs``:
  single output channels no path reaches (random pruning at 90% left a normal component with
  no weight in its 1x1 classifier: that task's error tripled, yet no layer was empty). Counted by a
  forward pass of a float64 copy in which every kept weight is 1, every pruned one 0, biases and
  the parameters a module declares as added (``ADDED_PARAMETERS``, such as a ViT's position
  embedding: a constant, not a path from the input) are 0, every other parameter (BatchNorm,
  mixing and attention weights) is made non-negative, BatchNorm uses unit statistics and
  LayerNorm only scales by its weights (its mean subtraction would turn path counts negative),
  on an all-ones input: the output of a task is then positive exactly when some path of kept
  weights leads to it (ReLU, GELU, pooling, attention and sums keep positive values positive,
  and zeros stay zero only where no path arrives).
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn

from methods.masks import MaskSet

# A module's attribute naming its parameters that are added to its activations (a position
# embedding), not multiplied with them.
ADDED_PARAMETERS = "added_parameters"


def _scale_only(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm without its normalisation: each feature scaled by its weight (non-negative
    here), so a positive path count stays positive and a zero stays zero."""
    return x if norm.weight is None else x * norm.weight


def collapsed_layers(masks: MaskSet) -> list[str]:
    return [name for name, mask in masks.masks.items() if not bool(mask.any())]


def min_layer_density(masks: MaskSet) -> float:
    return min(float(mask.float().mean()) for mask in masks.masks.values())


@torch.no_grad()
def path_outputs(
    model: nn.Module, masks: MaskSet, input_shape: tuple[int, ...]
) -> dict[str, torch.Tensor]:
    """Each task's output of the 0/1 path-count copy: positive exactly where a path arrives."""
    work = copy.deepcopy(model).double().eval()
    added = {
        f"{prefix}.{name}" if prefix else name
        for prefix, module in work.named_modules()
        for name in getattr(module, ADDED_PARAMETERS, ())
    }
    for name, param in work.named_parameters():
        if name in masks.masks:
            param.copy_(masks.masks[name].to(param.device, param.dtype))
        elif name.endswith("bias") or name in added:
            param.zero_()
        else:
            param.abs_()  # BatchNorm scale, mixing and attention weights: keep paths positive
    for module in work.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
            if module.weight is not None:
                module.weight.fill_(1.0)
        elif isinstance(module, nn.LayerNorm):
            module.forward = functools.partial(_scale_only, module)
    device = next(work.parameters()).device
    return work(torch.ones((1, *input_shape), dtype=torch.float64, device=device))


def disconnected_tasks(outputs: dict[str, torch.Tensor]) -> list[str]:
    """Tasks with no path of kept weights from the input to their output."""
    return [task for task, out in outputs.items() if not bool((out > 0).any())]


def dead_outputs(outputs: dict[str, torch.Tensor]) -> list[str]:
    """Output channels (``task[c]``: a class, a normal component) that no path reaches, in
    tasks that are otherwise connected: the prediction of that channel ignores the input."""
    dead = []
    for task, out in outputs.items():
        reached = (out > 0).flatten(2).any(dim=2).any(dim=0)  # per channel
        if bool(reached.any()):
            dead += [f"{task}[{c}]" for c in (~reached).nonzero().flatten().tolist()]
    return dead


def health_report(
    model: nn.Module, masks: MaskSet, input_shape: tuple[int, ...]
) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, tags): counts and the smallest layer density; names of what is broken."""
    collapsed = collapsed_layers(masks)
    outputs = path_outputs(model, masks, input_shape)
    cut_off, dead = disconnected_tasks(outputs), dead_outputs(outputs)
    metrics = {
        "health/collapsed_layers": float(len(collapsed)),
        "health/min_layer_density": min_layer_density(masks),
        "health/disconnected_tasks": float(len(cut_off)),
        "health/dead_outputs": float(len(dead)),
    }
    tags = {
        "health/collapsed": ",".join(collapsed),
        "health/disconnected": ",".join(cut_off),
        "health/dead_outputs": ",".join(dead),
    }
    return metrics, tags
