"""Run a sweep's cells one after another in this process: skip the finished ones, start each
cell once its source has finished (``schedule``), record failures, keep going."""

from __future__ import annotations

import logging
import time

from benchmarks.cells.cell import Cell
from benchmarks.cells.execute import run_cell
from benchmarks.cells.resources import CellResources
from benchmarks.sweep.progress import Progress
from benchmarks.sweep.report import SweepReport
from benchmarks.sweep.schedule import Schedule, cells_to_run
from benchmarks.tracking.claims import CellTakenError

log = logging.getLogger(__name__)


def run_sweep(resources: CellResources, cells: list[Cell]) -> SweepReport:
    report = SweepReport()
    todo = cells_to_run(cells, lambda c: resources.tracker.find_finished(c.key) is not None, report)
    schedule = Schedule(todo)
    progress = Progress(list(todo.values()))
    while ready := schedule.ready():
        for key in ready:
            failure = _run_one(resources, todo[key], report, progress)
            report.failed += schedule.settle(key, failure)
    return report


def _run_one(
    resources: CellResources, cell: Cell, report: SweepReport, progress: Progress
) -> str | None:
    """Run one cell; returns its failure reason, or None (finished, or taken by another sweep)."""
    prefix = progress.prefix(cell.label)
    log.info("%s: starting (cell %s)", prefix, cell.cell_id)
    started = time.perf_counter()
    try:
        run_cell(resources, cell)
    except CellTakenError as taken:
        log.info("%s: skipped: %s", prefix, taken)
        report.skipped.append(cell.label)
        progress.done(cell, None)
        return None
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a failed cell is recorded in MLflow; the sweep goes on
        reason = f"{type(error).__name__}: {error}"
        log.error("%s: FAILED: %s", prefix, reason)
        report.failed.append((cell.label, reason))
        progress.done(cell, None)
        return reason
    seconds = time.perf_counter() - started
    report.ran.append(cell.label)
    progress.done(cell, seconds)
    log.info("%s: finished in %.1fs (%s)", prefix, seconds, progress.summary())
    return None
