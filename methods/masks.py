"""Binary masks over a network's prunable tensors.

Invariant: once a mask is applied, a pruned weight is exactly zero after every optimizer step and
after loading a checkpoint, and the sparsity we report is the real count of zeros among the
prunable weights (``measure_sparsity``), not what the mask claims.

A channel-pruned network has fewer weights than the network it came from: it carries
``DENSE_COUNTS_ATTRIBUTE`` (weight name -> count before pruning), and sparsity counts the removed
weights as pruned, so an unstructured and a structured model at 70% hold the same number of
nonzero weights.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

PRUNABLE_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
# Every method's final masks are within this of the requested sparsity (0.1 percentage points).
SPARSITY_TOLERANCE = 0.001
DENSE_COUNTS_ATTRIBUTE = "dense_weight_counts"  # set on a network whose channels were removed


def dense_weight_counts(model: nn.Module) -> dict[str, int]:
    """Each prunable tensor's size in the unpruned network (its present size unless channels
    were removed)."""
    recorded = getattr(model, DENSE_COUNTS_ATTRIBUTE, None)
    if recorded is not None:
        return dict(recorded)
    return {name: p.numel() for name, p in prunable_parameters(model).items()}


def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Conv and linear weights, keyed by fully qualified parameter name (biases and BN are kept)."""
    return {
        f"{name}.weight" if name else "weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, PRUNABLE_MODULES)
    }


def owners_of(model: nn.Module, names: Iterable[str]) -> dict[str, str]:
    """Owner (``shared`` or a task) of each named tensor, from the model's structure."""
    all_owners = model.parameter_owners()  # type: ignore[operator]
    return {name: all_owners[name] for name in names}


class MaskSet:
    """One boolean keep-mask per prunable tensor, with the owner of each tensor."""

    def __init__(
        self,
        masks: dict[str, torch.Tensor],
        owners: dict[str, str],
        task_masks: dict[str, dict[str, torch.Tensor]] | None = None,
        dense_counts: dict[str, int] | None = None,
    ):
        if set(masks) != set(owners):
            raise ValueError("masks and owners must cover the same tensors")
        self.masks = {name: m.bool() for name, m in masks.items()}
        self.owners = dict(owners)
        # Sizes before channels were removed (None: the masks' own sizes).
        self.dense_counts = dict(dense_counts) if dense_counts is not None else None
        # Methods that select per task (DiSparse) keep each task's own selection for analysis.
        self.task_masks = task_masks
        self._factors: dict[str, torch.Tensor] = {}  # float copies used by attach()
        self.version = 0  # counts set_mask calls, so costs derived from the masks can be cached

    @classmethod
    def dense(cls, model: nn.Module) -> MaskSet:
        params = prunable_parameters(model)
        masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
        return cls(masks, owners_of(model, params), dense_counts=dense_weight_counts(model))

    # ---- applying -------------------------------------------------------------------------
    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Zero every pruned weight of ``model``."""
        for name, mask in self.masks.items():
            param = model.get_parameter(name)
            param.mul_(mask.to(param.device, param.dtype))

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        """Apply now and after every ``optimizer.step()``; returns the hook handle.

        Masks are cached as float tensors on the parameters' device so the per-step cost is a
        single fused multiply over all prunable tensors.
        """
        params = [model.get_parameter(n) for n in self.masks]
        self._factors = {
            n: m.to(p.device, p.dtype) for (n, m), p in zip(self.masks.items(), params, strict=True)
        }
        factors = list(self._factors.values())

        @torch.no_grad()
        def reapply(*_args, **_kwargs) -> None:
            torch._foreach_mul_(params, factors)

        reapply()
        return optimizer.register_step_post_hook(reapply)

    def set_mask(self, name: str, mask: torch.Tensor) -> None:
        """Replace one tensor's mask (dynamic sparse training); attached hooks see the change."""
        self.masks[name] = mask.bool()
        self.version += 1
        if name in self._factors:
            self._factors[name].copy_(mask)

    # ---- counting -------------------------------------------------------------------------
    def num_total(self) -> int:
        """Prunable weights of the unpruned network (removed channels included)."""
        return sum(self._sizes().values())

    def _sizes(self) -> dict[str, int]:
        if self.dense_counts is not None:
            return self.dense_counts
        return {n: m.numel() for n, m in self.masks.items()}

    def num_kept(self) -> int:
        return sum(int(m.sum()) for m in self.masks.values())

    def sparsity(self) -> float:
        return 1.0 - self.num_kept() / self.num_total()

    def sparsity_by_layer(self) -> dict[str, float]:
        sizes = self._sizes()
        return {n: 1.0 - int(m.sum()) / sizes[n] for n, m in self.masks.items()}

    # ---- persistence ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"masks": {n: m.cpu() for n, m in self.masks.items()}, "owners": self.owners}
        if self.dense_counts is not None:
            state["dense_counts"] = self.dense_counts
        return state

    @classmethod
    def from_state_dict(cls, state: dict) -> MaskSet:
        """Masks of a saved checkpoint (``checkpoint/model.pt`` and ``masks/masks.pt`` of a run)."""
        return cls(state["masks"], state["owners"], dense_counts=state.get("dense_counts"))

    def to(self, device: torch.device | str) -> MaskSet:
        return MaskSet(
            {n: m.to(device) for n, m in self.masks.items()},
            self.owners,
            self.task_masks,
            self.dense_counts,
        )


@torch.no_grad()
def measure_sparsity(model: nn.Module) -> dict[str, float]:
    """Real zeros among prunable weights, removed channels counted as zeros: ``overall`` and
    ``owner/<owner>`` fractions."""
    params = prunable_parameters(model)
    sizes = dense_weight_counts(model)
    pruned = {n: int((p == 0).sum()) + sizes[n] - p.numel() for n, p in params.items()}
    result = {"overall": sum(pruned.values()) / sum(sizes.values())}
    owners = owners_of(model, params)
    for owner in sorted(set(owners.values())):
        names = [n for n in params if owners[n] == owner]
        result[f"owner/{owner}"] = sum(pruned[n] for n in names) / sum(sizes[n] for n in names)
    return result
