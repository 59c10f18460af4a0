"""AdapMTL's adaptive task-loss weights (Xiang et al., ACM MM 2024; ``main/trainer.py`` of
MitchellX/AdapMTL): a task whose loss moves more, relative to its size, while the network is
pruned gets more weight.

From step ``begin`` on, each step appends ``|previous loss - loss| / loss`` to the task's window;
once the window holds more than ``window`` values the oldest is dropped and the task's weight
becomes the window's mean. Every step the weights are rescaled to sum to the number of tasks
(before the first full window every weight is 1).
"""

from __future__ import annotations

from collections import deque


class RobustnessWeights:
    """Per-task loss weights, updated with each step's task losses (``update``)."""

    def __init__(self, tasks: list[str], begin: int, window: int):
        if window < 1:
            raise ValueError(f"the weighting window must hold at least one step, got {window}")
        self.begin, self.window = begin, window
        self.weights = {t: 1.0 for t in tasks}
        self._previous: dict[str, float | None] = {t: None for t in tasks}
        self._changes: dict[str, deque[float]] = {t: deque() for t in tasks}

    def update(self, step: int, losses: dict[str, float]) -> dict[str, float]:
        """Take step ``step``'s task losses; returns the weights after it."""
        if step >= self.begin:
            for task, loss in losses.items():
                previous = self._previous[task]
                changes = self._changes[task]
                if previous is not None:
                    changes.append(abs(previous - loss) / max(loss, 1e-12))
                self._previous[task] = loss
                if len(changes) > self.window:
                    changes.popleft()
                    self.weights[task] = sum(changes) / len(changes)
        total = sum(self.weights.values())
        if total > 0:
            scale = len(self.weights) / total
            self.weights = {t: w * scale for t, w in self.weights.items()}
        return dict(self.weights)
