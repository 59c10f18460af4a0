"""Finished cells whose code changed since they ran (stale): said before a sweep starts, with
what happens to them under ``rerun``. Nothing is deleted: old runs stay in the store."""

from __future__ import annotations

import logging

from benchmarks.cells.cell import Cell
from benchmarks.tracking.store import Tracker

log = logging.getLogger(__name__)
LISTED = 12  # stale cells named one by one before "... and N more"


def stale_cells(tracker: Tracker, cells: list[Cell]) -> list[Cell]:
    """Cells with a finished run but none made by today's code."""
    stale = []
    for cell in cells:
        finished = tracker.runs_of(cell.key, "FINISHED")
        if finished and all(cell.key.is_stale(run) for run in finished):
            stale.append(cell)
    return stale


def report_stale(tracker: Tracker, cells: list[Cell]) -> list[Cell]:
    """Log the stale cells and what this sweep does with them; returns them."""
    rerun = tracker.reuse.rerun
    if rerun == "all":
        log.warning("rerun=all: every cell of the sweep runs again (old runs stay in the store)")
        return []
    stale = stale_cells(tracker, cells)
    if not stale:
        return stale
    names = ", ".join(c.label for c in stale[:LISTED])
    more = f" and {len(stale) - LISTED} more" if len(stale) > LISTED else ""
    action = (
        "recomputing them (rerun=stale)"
        if rerun == "stale"
        else "reusing them; rerun=stale recomputes exactly these, rerun=all every cell"
    )
    log.warning(
        "%d finished cell(s) were computed by other code (stale): %s%s; %s",
        len(stale),
        names,
        more,
        action,
    )
    return stale
