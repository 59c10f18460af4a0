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

from benchmarks.cell import Cell
from benchmarks.sweep import load_method_config
from benchmarks.sweep_runner import SweepReport
from methods.registry import get_method

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process needs to open the store and place tensors."""

    tracking_uri: str
    experiment: str
    artifact_location: str | None
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

    from benchmarks.runner import RunEnv
    from benchmarks.tracking import Tracker

    global _ENV
    torch.set_num_threads(setup.threads)
    logging.basicConfig(
        level=logging.INFO, format=f"[worker {os.getpid()}] %(levelname)s %(message)s"
    )
    tracker = Tracker(setup.tracking_uri, setup.experiment, setup.artifact_location)
    _ENV = RunEnv(tracker, torch.device(setup.device))


def _run_in_worker(cell: Cell) -> tuple[float, str | None]:
    """(seconds, failure reason or None); the run is recorded FAILED in MLflow on failure."""
    from benchmarks.runner import run_cell

    started = time.perf_counter()
    try:
        run_cell(_ENV, cell)
    except Exception as error:  # recorded in MLflow by the tracker; the sweep goes on
        return time.perf_counter() - started, f"{type(error).__name__}: {error}"
    return time.perf_counter() - started, None


def source_cell(cell: Cell) -> Cell | None:
    """The cell whose trained model ``cell`` starts from, if any."""
    start_from = get_method(cell.method_name).start_from
    return cell.with_method(load_method_config(start_from), 0.0) if start_from else None


def run_sweep_parallel(
    setup: WorkerSetup, cells: list[Cell], workers: int, is_finished
) -> SweepReport:
    """Run ``cells`` on ``workers`` processes; ``is_finished(config_hash)`` says which to skip."""
    report = SweepReport()
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
    waiting_on = {h: getattr(source_cell(c), "config_hash", None) for h, c in todo.items()}
    waiting_on = {h: s if s in todo else None for h, s in waiting_on.items()}
    total, started = len(todo), time.perf_counter()
    log.info("%d cell(s) on %d worker(s), %d thread(s) each", total, workers, setup.threads)
    context = get_context("spawn")  # a clean interpreter: no inherited torch threads or locks
    with ProcessPoolExecutor(workers, context, _start_worker, (setup,)) as pool:
        running: dict[Future, str] = {}

        def submit_ready() -> None:
            for key in [k for k, dep in waiting_on.items() if dep is None]:
                del waiting_on[key]
                try:
                    running[pool.submit(_run_in_worker, todo[key])] = key
                except BrokenProcessPool as error:  # a worker died: nothing more can start
                    report.failed.append((todo[key].label, f"worker pool broken: {error}"))

        submit_ready()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                label = todo[key].label
                try:
                    seconds, failure = future.result()
                except Exception as error:  # the worker process itself died
                    seconds, failure = math.nan, f"worker died: {type(error).__name__}: {error}"
                finished = len(report.ran) + len(report.failed) + 1
                prefix = f"[{finished}/{total}] {label}"
                if failure is None:
                    report.ran.append(label)
                    log.info(
                        "%s: finished in %.1fs (sweep %.0fs so far)",
                        prefix,
                        seconds,
                        time.perf_counter() - started,
                    )
                else:
                    report.failed.append((label, failure))
                    log.error("%s: FAILED: %s", prefix, failure)
                for other, dep in list(waiting_on.items()):
                    if dep != key:
                        continue
                    if failure is None:
                        waiting_on[other] = None
                    else:  # its source model failed: nothing to start from
                        del waiting_on[other]
                        report.failed.append((todo[other].label, f"source cell failed: {failure}"))
            submit_ready()
    return report
