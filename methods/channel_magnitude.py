"""``channel_magnitude``: remove the channels of smallest group L2 norm from the trained dense
model, then fine-tune (the structured counterpart of ``magnitude``; Li et al. 2017 score one
layer's filters, Torch-Pruning's group norm sums every weight a channel spans).

Score of a channel: the L2 norm of all conv/linear weights it spans in its group (its filters,
and the next layers' input slices); with ``batchnorm``, also the scale gamma of the BatchNorm
that normalises each of its filters' outputs.

Departs from Torch-Pruning's default ``GroupMagnitudeImportance`` (p=2), which counts BatchNorm
gamma in the group: by default only conv/linear weights count here (``batchnorm=true`` counts
gamma too and ranks a group's channels as that importance does: it averages the layers' squared
norms where this sums them, the same order within a group). Li et al. 2017 score one layer's
filters by their L1 norm; the group L2 norm and the layer-uniform allocation (every group loses
the same fraction) are Torch-Pruning's."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from methods.channel_graph import OUTPUTS, ChannelGraph, ChannelGroup
from methods.channel_pruning import PruneChannels, ScoredChannelOptions
from methods.context import PruneContext
from methods.masks import PRUNABLE_MODULES
from methods.registry import register_method
from methods.scoring import magnitude_scores


@dataclass(frozen=True)
class ChannelMagnitudeOptions(ScoredChannelOptions):
    batchnorm: bool = field(
        default=False,
        metadata={
            "help": "also count each channel's BatchNorm scale gamma in its group norm "
            "(Torch-Pruning's default group magnitude importance does)"
        },
    )


@register_method("channel_magnitude")
class ChannelMagnitude(PruneChannels):
    Options = ChannelMagnitudeOptions
    paper = "Li et al., Pruning Filters for Efficient ConvNets, ICLR 2017 (group L2 norm)"

    def channel_scores(self, ctx: PruneContext, graph: ChannelGraph) -> dict[str, torch.Tensor]:
        squares = {n: s.square() for n, s in magnitude_scores(ctx.model).items()}
        gammas = batchnorm_scales(graph.model, graph.example) if self.options.batchnorm else {}
        return {
            g.name: (g.channel_scores(squares) + _squared_gammas(g, gammas)).sqrt()
            for g in graph.groups
        }


def _squared_gammas(group: ChannelGroup, gammas: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per channel, the squared gammas of the BatchNorms after the group's filters."""
    total = torch.zeros(group.size, dtype=torch.float64)
    for piece in group.slices:
        if piece.dim == OUTPUTS and piece.weight in gammas:
            picked = gammas[piece.weight][torch.tensor(piece.positions)].double().cpu()
            total += picked.square().reshape(group.size, piece.per_channel).sum(dim=1)
    return total


def batchnorm_scales(model: nn.Module, example: torch.Tensor) -> dict[str, torch.Tensor]:
    """The scale gamma of the BatchNorm that normalises each conv/linear output, by the layer's
    weight name: traced on ``example`` (eval mode, no gradients), a BatchNorm whose input is
    that layer's output tensor."""
    names = {module: name for name, module in model.named_modules()}
    produced: dict[int, tuple[str, torch.Tensor]] = {}  # the tensors kept: ids stay unique
    found: dict[str, torch.Tensor] = {}

    def after_layer(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        produced[id(output)] = (names[module], output)

    def before_norm(module: nn.Module, inputs: tuple) -> None:
        source = produced.get(id(inputs[0]))
        if source is not None and module.affine:
            found[f"{source[0]}.weight"] = module.weight.detach()

    hooks = [
        module.register_forward_hook(after_layer)
        for module in model.modules()
        if isinstance(module, PRUNABLE_MODULES)
    ]
    hooks += [
        module.register_forward_pre_hook(before_norm)
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
    ]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return found
