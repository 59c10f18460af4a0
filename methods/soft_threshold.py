"""Soft-threshold reparameterisation of a network's prunable weights, one learnable threshold per
owner (the shared encoder, each task's head): what AdapMTL trains (Kusupati et al., Soft Threshold
Weight Reparameterization, ICML 2020, with per-component thresholds).

While installed, every prunable module computes with ``sign(w) * relu(|w| - sigmoid(alpha))``
instead of its weight ``w``; the weights keep their names and the thresholds live in the
``soft_thresholds`` parameters of the network, so the training loop's optimiser trains both.
``remove`` bakes the thresholded weights in and leaves a plain network (nothing to install when
the model is loaded again).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from methods.masks import PRUNABLE_MODULES, owners_of, prunable_parameters

THRESHOLDS = "soft_thresholds"


def soft_threshold(weight: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """``sign(w) * max(|w| - threshold, 0)``: weights below the threshold are exactly zero, the
    others shrink by it (gradient 1 to the kept weights, minus their sign to the threshold)."""
    return torch.sign(weight) * torch.relu(weight.abs() - threshold)


def threshold_logit(value: float) -> float:
    """The ``alpha`` whose ``sigmoid`` is ``value`` (clamped inside (0, 1))."""
    value = min(max(value, 1e-12), 1.0 - 1e-6)
    return math.log(value / (1.0 - value))


class SoftThresholds:
    """The installed reparameterisation of one network (see the module docstring)."""

    def __init__(self, model: nn.Module, initial_alpha: float):
        self.model = model
        self.owners = owners_of(model, prunable_parameters(model))
        owners = sorted(set(self.owners.values()))
        alphas = {o: nn.Parameter(torch.tensor(float(initial_alpha))) for o in owners}
        device = next(model.parameters()).device
        model.add_module(THRESHOLDS, nn.ParameterDict(alphas).to(device))
        self._handles = []
        for name, module in model.named_modules():
            if isinstance(module, PRUNABLE_MODULES):
                alpha = self.alpha(self.owners[f"{name}.weight" if name else "weight"])
                self._handles.append(module.register_forward_pre_hook(self._swap_in(alpha)))
                self._handles.append(module.register_forward_hook(_swap_out))

    def alpha(self, owner: str) -> nn.Parameter:
        return getattr(self.model, THRESHOLDS)[owner]

    def thresholds(self) -> dict[str, torch.Tensor]:
        """Each owner's threshold ``sigmoid(alpha)``, detached."""
        return {o: torch.sigmoid(a.detach()) for o, a in getattr(self.model, THRESHOLDS).items()}

    def parameters(self) -> list[nn.Parameter]:
        return list(getattr(self.model, THRESHOLDS).values())

    def weight_thresholds(self) -> dict[str, torch.Tensor]:
        """The threshold each prunable weight is compared with (its owner's)."""
        by_owner = self.thresholds()
        return {name: by_owner[owner] for name, owner in self.owners.items()}

    @torch.no_grad()
    def sparsity(self) -> float:
        """The fraction of prunable weights the thresholds zero now."""
        params = prunable_parameters(self.model)
        thresholds = self.weight_thresholds()
        # counted on the device and read once: this runs every training step
        pruned = sum((params[n].abs() <= t).sum() for n, t in thresholds.items())
        return int(pruned) / sum(params[n].numel() for n in thresholds)

    @torch.no_grad()
    def remove(self, thresholds: dict[str, torch.Tensor]) -> None:
        """Bake ``soft_threshold(w, thresholds[name])`` into each weight; leave a plain network."""
        for handle in self._handles:
            handle.remove()
        params = prunable_parameters(self.model)
        for name, threshold in thresholds.items():
            params[name].copy_(soft_threshold(params[name], threshold))
        delattr(self.model, THRESHOLDS)

    @staticmethod
    def _swap_in(alpha: nn.Parameter):
        def hook(module: nn.Module, _inputs) -> None:
            latent = module._parameters["weight"]
            module.__dict__["_latent_weight"] = latent  # a plain attribute, not a parameter
            module._parameters["weight"] = soft_threshold(latent, torch.sigmoid(alpha))

        return hook


def _swap_out(module: nn.Module, _inputs, _output) -> None:
    """Put the trained (latent) weight back once the module has computed with its threshold."""
    module._parameters["weight"] = module.__dict__.pop("_latent_weight")


@torch.no_grad()
def targeted_thresholds(
    model: nn.Module, thresholds: dict[str, torch.Tensor], keep: int
) -> tuple[dict[str, torch.Tensor], float]:
    """Per-weight thresholds that keep exactly the ``keep`` weights of largest margin
    ``|w| - threshold`` (ties at the cut aside), and the shift of the cut from the learned
    thresholds (positive: they kept too many). A weight above its learned threshold keeps its
    trained value ``|w| - threshold``; when the learned thresholds kept too few, every threshold
    is lowered by the same amount (so the revived weights are small, not zero)."""
    params = prunable_parameters(model)
    margins = {n: params[n].abs() - t for n, t in thresholds.items()}
    flat = torch.cat([m.flatten().float().cpu() for m in margins.values()])
    if keep >= flat.numel():
        cut = float(flat.min()) - 1.0
    else:
        cut = float(torch.kthvalue(flat, flat.numel() - keep).values)
    lowered = {n: t + min(cut, 0.0) for n, t in thresholds.items()}
    return {
        n: torch.where(margins[n] > cut, lowered[n], torch.full_like(margins[n], math.inf))
        for n in thresholds
    }, cut
