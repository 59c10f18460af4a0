"""The multitask network contract every model and method relies on."""

from __future__ import annotations

import torch
from torch import nn

SHARED = "shared"


def owned_by(prefix: str, module: nn.Module, owner: str) -> dict[str, str]:
    """``{qualified name: owner}`` for every parameter under ``module`` (reached at ``prefix``)."""
    return {f"{prefix}.{name}": owner for name, _ in module.named_parameters()}


class MultiTaskNet(nn.Module):
    """A shared ``encoder`` (or none) and one head per task in ``heads``.

    ``forward(x)`` returns ``{task: prediction}`` at the input resolution; with
    ``upsample_in_training`` off, train-mode passes (training and scoring) return the heads'
    outputs at the network's output stride instead, and the losses downsample the labels to them
    (the DiSparse authors' protocol). Which part of the
    network owns a parameter (``shared`` or a task name) follows from where the module sits, never
    from the parameter's name: subclasses with task-specific modules extend
    ``parameter_owners``.
    """

    def __init__(self, encoder: nn.Module | None, heads: dict[str, nn.Module]):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.upsample_in_training = True

    def task_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The features each head reads; with hard sharing, the same tensor for every task."""
        assert self.encoder is not None
        features = self.encoder(x)
        return {task: features for task in self.heads}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.task_features(x)
        size = x.shape[-2:]
        out = {}
        for task, head in self.heads.items():
            y = head(features[task])
            if y.shape[-2:] != size and (self.upsample_in_training or not self.training):
                y = nn.functional.interpolate(y, size=size, mode="bilinear", align_corners=False)
            out[task] = y
        return out

    def parameter_owners(self) -> dict[str, str]:
        """Qualified parameter name -> owner (``shared`` or the task name)."""
        owners = owned_by("encoder", self.encoder, SHARED) if self.encoder is not None else {}
        for task, head in self.heads.items():
            owners.update(owned_by(f"heads.{task}", head, task))
        return owners
