"""Run a list of cells: skip the finished ones, record failures, keep going."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from benchmarks.cells.cell import Cell
from benchmarks.cells.execute import RunEnv, run_cell
from benchmarks.tracking.store import CellTakenError

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"{len(self.ran)} ran, {len(self.skipped)} skipped (already finished), "
            f"{len(self.failed)} failed"
        ]
        lines += [f"  FAILED {label}: {reason}" for label, reason in self.failed]
        return "\n".join(lines)


def run_sweep(env: RunEnv, cells: list[Cell]) -> SweepReport:
    report = SweepReport()
    started = time.perf_counter()
    for index, cell in enumerate(cells, 1):
        prefix = f"[{index}/{len(cells)}] {cell.label}"
        finished = env.tracker.find_finished(cell.config_hash)
        if finished is not None:
            log.info("%s: already finished (run %s), skipped", prefix, finished.info.run_id)
            report.skipped.append(cell.label)
            continue
        log.info("%s: starting (config %s)", prefix, cell.config_hash)
        cell_started = time.perf_counter()
        try:
            run_cell(env, cell)
        except CellTakenError as taken:
            log.info("%s: skipped: %s", prefix, taken)
            report.skipped.append(cell.label)
            continue
        except KeyboardInterrupt:
            raise
        except Exception as error:  # a failed cell is recorded in MLflow; the sweep goes on
            log.error("%s: FAILED: %s: %s", prefix, type(error).__name__, error)
            report.failed.append((cell.label, f"{type(error).__name__}: {error}"))
            continue
        report.ran.append(cell.label)
        log.info(
            "%s: finished in %.1fs (sweep %.0fs so far)",
            prefix,
            time.perf_counter() - cell_started,
            time.perf_counter() - started,
        )
    return report
