"""An in-memory multitask split: one stacked tensor per field, indexed into sample dicts."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class MultiTaskTensorDataset(Dataset):
    """Holds ``image`` and label tensors with a shared first (sample) dimension."""

    def __init__(self, fields: dict[str, torch.Tensor]):
        lengths = {name: len(t) for name, t in fields.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"fields disagree on the number of samples: {lengths}")
        self.fields = fields

    def __len__(self) -> int:
        return len(next(iter(self.fields.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: t[index] for name, t in self.fields.items()}
