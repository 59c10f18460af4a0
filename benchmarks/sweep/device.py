"""Choosing the torch device from the ``device`` option."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str) -> torch.device:
    if choice not in DEVICE_CHOICES and not choice.startswith("cuda:"):
        raise ValueError(f"device={choice!r} is not one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={choice} but PyTorch sees no CUDA device (torch {torch.__version__}); "
            "use device=cpu or device=auto"
        )
    return torch.device(choice)
