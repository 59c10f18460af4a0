"""Cells run in N long-lived worker processes (``workers=N``), each with cores/N torch threads.

Why processes that take many cells: each new process spends seconds importing torch and MLflow,
and a worker that inherits every core oversubscribes a small machine (measured 5-10x slowdowns
on 2 cores), so each worker gets its share of the threads. Cells that start from another cell's
trained model (pretrained methods need the dense cell of their setting and seed) are submitted
only once that cell has finished, so the source model is trained exactly once.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context

from benchmarks.cells.cell import Cell
from benchmarks.sweep.progress import Progress
from benchmarks.sweep.report import SweepReport
from benchmarks.sweep.schedule import Schedule, cells_to_run
from benchmarks.tracking.store import StoreConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process needs to open the store and place tensors."""

    store: StoreConfig
    device: str
    threads: int


_RESOURCES = None  # the worker process's CellResources, built once by _start_worker


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_workers(workers: int | str, device: str) -> int:
    """``auto``: one per core on the CPU (measured fastest here), one on a GPU (cells share it)."""
    if workers == "auto":
        return 1 if device.startswith("cuda") else available_cores()
    try:
        count = int(workers)
    except (TypeError, ValueError):
        count = 0
    if count < 1 or str(count) != str(workers).strip():
        raise ValueError(f"workers={workers!r}: give a positive integer or auto")
    return count


def _start_worker(setup: WorkerSetup) -> None:
    import torch

    from benchmarks.cells.resources import CellResources
    from benchmarks.training import preemption

    global _RESOURCES
    preemption.install()
    torch.set_num_threads(setup.threads)
    logging.basicConfig(
        level=logging.INFO, format=f"[worker {os.getpid()}] %(levelname)s %(message)s"
    )
    _RESOURCES = CellResources(setup.store.open(), torch.device(setup.device))


TAKEN = "taken"  # outcome of a cell another sweep is running or has finished


def _run_in_worker(cell: Cell) -> tuple[float, str | None]:
    """(seconds, None, or the failure reason, or ``TAKEN``); a failed run is recorded FAILED
    in MLflow."""
    from benchmarks.cells.execute import run_cell
    from benchmarks.tracking.claims import CellTakenError

    started = time.perf_counter()
    try:
        run_cell(_RESOURCES, cell)
    except CellTakenError:
        return time.perf_counter() - started, TAKEN
    except Exception as error:  # recorded in MLflow by the tracker; the sweep goes on
        return time.perf_counter() - started, f"{type(error).__name__}: {error}"
    return time.perf_counter() - started, None


def run_sweep_parallel(
    setup: WorkerSetup, cells: list[Cell], workers: int, is_finished: Callable[[Cell], bool]
) -> SweepReport:
    """Run ``cells`` on ``workers`` processes; ``is_finished(cell)`` says which to skip."""
    report = SweepReport()
    todo = cells_to_run(cells, is_finished, report)
    if not todo:  # a rerun of a finished sweep starts no worker
        return report
    schedule = Schedule(todo)
    progress = Progress(list(todo.values()), workers)
    log.info("%d cell(s) on %d worker(s), %d thread(s) each", len(todo), workers, setup.threads)
    context = get_context("spawn")  # a clean interpreter: no inherited torch threads or locks
    with ProcessPoolExecutor(workers, context, _start_worker, (setup,)) as pool:
        running: dict[Future, str] = {}

        def submit_ready() -> None:
            for key in schedule.ready():
                try:
                    running[pool.submit(_run_in_worker, todo[key])] = key
                except BrokenProcessPool as error:  # a worker died: nothing more can start
                    report.failed.append((todo[key].label, f"worker pool broken: {error}"))

        try:
            submit_ready()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    key = running.pop(future)
                    failure = _outcome(future, todo[key], report, progress)
                    report.failed += schedule.settle(key, failure)
                submit_ready()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop the workers' cells too (KILLED)
            for process in list(pool._processes.values()):  # no public handle on the workers
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return report


def _outcome(future: Future, cell: Cell, report: SweepReport, progress: Progress) -> str | None:
    """Log and record one ended cell; returns its failure reason or None."""
    try:
        seconds, failure = future.result()
    except Exception as error:  # the worker process itself died
        seconds, failure = math.nan, f"worker died: {type(error).__name__}: {error}"
    prefix = progress.prefix(cell.label)
    progress.done(cell, seconds if failure is None else None)
    if failure == TAKEN:  # dependents wait for the other sweep's run (execute.train_source_first)
        report.skipped.append(cell.label)
        log.info("%s: another sweep runs or ran this cell, skipped", prefix)
        return None
    if failure is None:
        report.ran.append(cell.label)
        log.info("%s: finished in %.1fs (%s)", prefix, seconds, progress.summary())
    else:
        report.failed.append((cell.label, failure))
        log.error("%s: FAILED: %s", prefix, failure)
    return failure
