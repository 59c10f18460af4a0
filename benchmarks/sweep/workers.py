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
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context

from benchmarks.cells.cell import Cell
from benchmarks.sweep.expand import load_method_config
from benchmarks.sweep.serial import SweepReport
from methods.registry import build_method

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process needs to open the store and place tensors."""

    tracking_uri: str
    experiment: str
    artifact_location: str | None
    stale_after_s: float
    device: str
    threads: int


_ENV = None  # the worker process's RunEnv, built once by _start_worker


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

    from benchmarks.cells.execute import RunEnv
    from benchmarks.tracking.store import Tracker
    from benchmarks.training import preemption

    global _ENV
    preemption.install()
    torch.set_num_threads(setup.threads)
    logging.basicConfig(
        level=logging.INFO, format=f"[worker {os.getpid()}] %(levelname)s %(message)s"
    )
    tracker = Tracker(
        setup.tracking_uri, setup.experiment, setup.artifact_location, setup.stale_after_s
    )
    _ENV = RunEnv(tracker, torch.device(setup.device))


TAKEN = "taken"  # outcome of a cell another sweep is running or has finished


def _run_in_worker(cell: Cell) -> tuple[float, str | None]:
    """(seconds, None, or the failure reason, or ``TAKEN``); a failed run is recorded FAILED
    in MLflow."""
    from benchmarks.cells.execute import run_cell
    from benchmarks.tracking.store import CellTakenError

    started = time.perf_counter()
    try:
        run_cell(_ENV, cell)
    except CellTakenError:
        return time.perf_counter() - started, TAKEN
    except Exception as error:  # recorded in MLflow by the tracker; the sweep goes on
        return time.perf_counter() - started, f"{type(error).__name__}: {error}"
    return time.perf_counter() - started, None


def source_cell(cell: Cell) -> Cell | None:
    """The cell whose trained model ``cell`` starts from, if any."""
    start_from = build_method(cell.method_name, cell.method_options).start_from
    return cell.with_method(load_method_config(start_from), 0.0) if start_from else None


class Schedule:
    """Which cells may start: those whose source cell (if it is being run too) has finished."""

    def __init__(self, todo: dict[str, Cell]):
        self.todo = todo
        sources = {key: source_cell(cell) for key, cell in todo.items()}
        self.waiting_on = {
            key: source.config_hash if source and source.config_hash in todo else None
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


def cells_to_run(cells: list[Cell], is_finished, report: SweepReport) -> dict[str, Cell]:
    """Unfinished cells by config hash, plus the unfinished source cells they start from."""
    todo: dict[str, Cell] = {}
    for cell in cells:
        if is_finished(cell.config_hash):
            log.info("%s: already finished, skipped", cell.label)
            report.skipped.append(cell.label)
            continue
        todo[cell.config_hash] = cell
        source = source_cell(cell)
        if source is not None and not is_finished(source.config_hash):
            todo.setdefault(source.config_hash, source)  # train it once, before its dependents
    return todo


def run_sweep_parallel(
    setup: WorkerSetup, cells: list[Cell], workers: int, is_finished
) -> SweepReport:
    """Run ``cells`` on ``workers`` processes; ``is_finished(config_hash)`` says which to skip."""
    report = SweepReport()
    todo = cells_to_run(cells, is_finished, report)
    if not todo:  # a rerun of a finished sweep starts no worker
        return report
    schedule = Schedule(todo)
    started = time.perf_counter()
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
                    failure = _outcome(future, todo[key].label, report, len(todo), started)
                    report.failed += schedule.settle(key, failure)
                submit_ready()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop the workers' cells too (KILLED)
            for process in list(pool._processes.values()):  # no public handle on the workers
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return report


def _outcome(
    future: Future, label: str, report: SweepReport, total: int, started: float
) -> str | None:
    """Log and record one ended cell; returns its failure reason or None."""
    try:
        seconds, failure = future.result()
    except Exception as error:  # the worker process itself died
        seconds, failure = math.nan, f"worker died: {type(error).__name__}: {error}"
    prefix = f"[{len(report.ran) + len(report.failed) + 1}/{total}] {label}"
    if failure == TAKEN:  # dependents wait for the other sweep's run (runner._source_run_id)
        report.skipped.append(label)
        log.info("%s: another sweep runs or ran this cell, skipped", prefix)
        return None
    if failure is None:
        report.ran.append(label)
        elapsed = time.perf_counter() - started
        log.info("%s: finished in %.1fs (sweep %.0fs so far)", prefix, seconds, elapsed)
    else:
        report.failed.append((label, failure))
        log.error("%s: FAILED: %s", prefix, failure)
    return failure
