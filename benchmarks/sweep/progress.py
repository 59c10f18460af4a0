"""Progress of a sweep with an ETA from measured cell times: each cell left is expected to take
the mean time of the finished cells of its method kind (of all finished cells until its kind
has one), divided among the workers."""

from __future__ import annotations

import time
from collections import defaultdict

from benchmarks.cells.cell import Cell
from methods.registry import get_method


def _kind(cell: Cell) -> str:
    return get_method(cell.method_name).kind.value


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Counts ended cells and estimates the time left of the ``cells`` still to run."""

    def __init__(self, cells: list[Cell], workers: int = 1):
        self.left = {id(c): _kind(c) for c in cells}
        self.total, self.workers = len(cells), max(1, workers)
        self.ended = 0
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.started = time.perf_counter()

    def prefix(self, label: str) -> str:
        return f"[{self.ended + 1}/{self.total}] {label}"

    def done(self, cell: Cell, seconds: float | None) -> None:
        """``cell`` ended after ``seconds`` (None: failed or skipped, no timing)."""
        kind = self.left.pop(id(cell), _kind(cell))
        self.ended += 1
        if seconds is not None:
            self.seconds[kind].append(seconds)

    def eta_s(self) -> float | None:
        every = [s for times in self.seconds.values() for s in times]
        if not every:
            return None
        overall = sum(every) / len(every)
        means = {k: sum(v) / len(v) for k, v in self.seconds.items()}
        return sum(means.get(kind, overall) for kind in self.left.values()) / self.workers

    def summary(self) -> str:
        elapsed = f"sweep {_duration(time.perf_counter() - self.started)} so far"
        eta = self.eta_s()
        if eta is None or not self.left:
            return elapsed
        return f"{elapsed}, about {_duration(eta)} left for {len(self.left)} cell(s)"
