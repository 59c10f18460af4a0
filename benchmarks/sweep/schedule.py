"""Which cells a sweep runs and in which order: unfinished cells and the source cells they start
from, each started only once its source has finished (the same rule for the serial sweep and
for worker processes)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from benchmarks.cells.cell import Cell
from benchmarks.cells.source import source_cell
from benchmarks.sweep.report import SweepReport

log = logging.getLogger(__name__)


class Schedule:
    """Which cells may start: those whose source cell (if it is being run too) has finished."""

    def __init__(self, todo: dict[str, Cell]):
        self.todo = todo
        sources = {key: source_cell(cell) for key, cell in todo.items()}
        self.waiting_on = {
            key: source.cell_id if source and source.cell_id in todo else None
            for key, source in sources.items()
        }

    def ready(self) -> list[str]:
        """Cells that may start now (each returned once)."""
        keys = [key for key, source in self.waiting_on.items() if source is None]
        for key in keys:
            del self.waiting_on[key]
        return keys

    def settle(self, key: str, failure: str | None) -> list[tuple[str, str]]:
        """Record that ``key`` ended; returns (label, reason) of dependents that cannot run."""
        dropped = []
        for other, source in list(self.waiting_on.items()):
            if source != key:
                continue
            if failure is None:
                self.waiting_on[other] = None
            else:  # its source model failed: nothing to start from
                del self.waiting_on[other]
                dropped.append((self.todo[other].label, f"source cell failed: {failure}"))
        return dropped


def cells_to_run(
    cells: list[Cell], is_finished: Callable[[Cell], bool], report: SweepReport
) -> dict[str, Cell]:
    """Unfinished cells by cell id, plus the unfinished source cells they start from."""
    todo: dict[str, Cell] = {}
    for cell in cells:
        if is_finished(cell):
            log.info("%s: already finished, skipped", cell.label)
            report.skipped.append(cell.label)
            continue
        todo[cell.cell_id] = cell
        source = source_cell(cell)
        if source is not None and not is_finished(source):
            todo.setdefault(source.cell_id, source)  # train it once, before its dependents
    return todo
