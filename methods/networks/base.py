"""The multitask network contract every model and method relies on."""

from __future__ import annotations

import torch
from torch import nn

SHARED = "shared"


class MultiTaskNet(nn.Module):
    """A shared ``encoder`` and one head per task in ``heads``.

    ``forward(x)`` returns ``{task: prediction}`` at the input resolution. Which part of the
    network owns a parameter (``shared`` or a task name) follows from where the module sits, never
    from the parameter's name.
    """

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module]):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)

    @property
    def task_names(self) -> list[str]:
        return list(self.heads.keys())

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(x)
        size = x.shape[-2:]
        out = {}
        for task, head in self.heads.items():
            y = head(features)
            if y.shape[-2:] != size:
                y = nn.functional.interpolate(y, size=size, mode="bilinear", align_corners=False)
            out[task] = y
        return out

    def parameter_owners(self) -> dict[str, str]:
        """Qualified parameter name -> owner (``shared`` or the task name)."""
        owners = {f"encoder.{n}": SHARED for n, _ in self.encoder.named_parameters()}
        for task, head in self.heads.items():
            owners.update({f"heads.{task}.{n}": task for n, _ in head.named_parameters()})
        return owners
