"""The endless, resumable stream of shuffled training batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


class BatchStream:
    """Shuffled training batches forever (reshuffled each epoch from ``generator``), moved to
    ``device``, read by ``num_workers`` loader processes (0: in this one). Its position can be
    saved and restored: a resumed cell sees the batches an uninterrupted one would have.

    Workers are not persistent: they restart each epoch, so every epoch's shuffle and the
    workers' augmentation seeds come from ``generator`` alone, which keeps the order the same
    with any number of workers (without augmentation) and a resume exact. The restart costs
    once per epoch."""

    def __init__(
        self,
        split: Dataset,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
        num_workers: int = 0,
    ):
        self.loader = DataLoader(
            split,
            batch_size=min(batch_size, len(split)),  # type: ignore[arg-type]
            shuffle=True,
            drop_last=True,
            generator=generator,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
        )
        self.generator, self.device = generator, device
        self._epoch: Iterator[dict[str, torch.Tensor]] | None = None
        self._epoch_start = generator.get_state()  # the shuffle of the current epoch comes from it
        self._taken = 0  # batches of the current epoch already returned

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        while True:
            if self._epoch is None:
                self._epoch_start = self.generator.get_state()
                self._epoch, self._taken = iter(self.loader), 0
            try:
                batch = next(self._epoch)
            except StopIteration:
                self._epoch = None
                continue
            self._taken += 1
            return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_start": self._epoch_start, "taken": self._taken}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replay the saved epoch's shuffle and skip the batches it had already returned (at most
        one epoch of reading)."""
        self.generator.set_state(state["epoch_start"])
        self._epoch_start = state["epoch_start"]
        self._epoch, self._taken = iter(self.loader), 0
        for _ in range(state["taken"]):
            next(self._epoch)
            self._taken += 1
