"""A module's state as checkpoints and artifacts hold it."""

from __future__ import annotations

import torch
from torch import nn


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict, detached, on the CPU (loadable with ``weights_only=True``)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}
