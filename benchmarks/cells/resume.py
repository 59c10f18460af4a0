"""Resumable cells: the random-number state a checkpoint keeps, and how a rerun finds the
checkpoint of a killed run of its cell (``protocol.checkpoint_every``; ``cells.phases`` writes it
and restores from it: ``TrainingPhases.state_dict``).

A checkpoint is the artifact ``resume/checkpoint.pt`` of the cell's run, rewritten every
``checkpoint_every`` steps and when SIGTERM arrives; the run's tag ``resume_point`` says which
training phase and step it holds. Only KILLED runs made by today's code are resumed (SIGTERM,
Ctrl-C, or a run found orphaned after kill -9): a FAILED run failed for a reason that would
recur, and another code's checkpoint would mix two versions in one result.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmarks.tracking.keys import CellKey
from benchmarks.tracking.store import Tracker


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a cell draws from (numpy's as tensors, so the file loads with
    ``weights_only``)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
        "python": random.getstate(),
        "method": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    random.setstate(state["python"])
    generator.set_state(state["method"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class ResumePoint:
    """A killed run's last checkpoint of this cell."""

    run_id: str
    state: dict[str, Any]

    @property
    def phase(self) -> int:
        return int(self.state["phase"])

    @property
    def step(self) -> int:
        return int(self.state["step"])


def find_resume_point(tracker: Tracker, key: CellKey, device: torch.device) -> ResumePoint | None:
    """The newest KILLED run of the cell, made by today's code, that saved a checkpoint, loaded;
    None if there is none."""
    found = tracker.killed_with_checkpoint(key, device)
    if found is None:
        return None
    run, state = found
    return ResumePoint(run.info.run_id, state)
