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
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.sharedctypes import Synchronized
from typing import NoReturn

from benchmarks.cells.cell import Cell
from benchmarks.sweep.first_sigterm import install_first_sigterm_only
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


def positive_integer(option: str, value: object, alternative: str) -> int:
    """``value`` as a whole number >= 1, or an error naming ``option`` and its alternative."""
    try:
        count = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        count = 0
    if count < 1 or str(count) != str(value).strip():
        raise ValueError(f"{option}={value!r}: give a positive integer or {alternative}")
    return count


def cells_per_gpu(value: object) -> int:
    return positive_integer("cells_per_gpu", value, "1 (one cell per GPU)")


def resolve_workers(workers: int | str, device: str, cells_per_gpu: int = 1) -> int:
    """``auto``: one per core on the CPU (measured fastest here); on ``cuda``, ``cells_per_gpu``
    per visible GPU (each worker pinned to one: ``worker_device``); one on a chosen ``cuda:N``."""
    if workers == "auto":
        if device == "cuda":
            import torch

            return max(1, torch.cuda.device_count()) * cells_per_gpu
        return 1 if device.startswith("cuda") else available_cores()
    return positive_integer("workers", workers, "auto")


def worker_device(device: str, index: int, gpus: int) -> str:
    """The device of the ``index``-th worker: on ``cuda`` (no index) the GPUs in turn, so the
    workers of a node spread over all of them; a chosen ``cuda:N`` or the CPU as given."""
    if device == "cuda" and gpus > 0:
        return f"cuda:{index % gpus}"
    return device


def _start_worker(setup: WorkerSetup, started: Synchronized) -> None:
    import torch

    from benchmarks.cells.resources import CellResources

    global _RESOURCES
    install_first_sigterm_only()
    torch.set_num_threads(setup.threads)
    with started.get_lock():  # this worker's number: which GPU it takes
        index = started.value
        started.value += 1
    gpus = torch.cuda.device_count() if setup.device == "cuda" else 0
    device = torch.device(worker_device(setup.device, index, gpus))
    if device.type == "cuda":
        torch.cuda.set_device(device)  # allocations without a device land on this worker's GPU
    logging.basicConfig(
        level=logging.INFO, format=f"[worker {os.getpid()} {device}] %(levelname)s %(message)s"
    )
    _RESOURCES = CellResources(setup.store.open(), device)
    _IDLE.set()
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()


PARENT_POLL_S = 1.0  # how often a worker checks that its sweep is still there
ORPHAN_GRACE_S = 120.0  # after SIGTERM, the longest a cell may take to save and stop
_IDLE = threading.Event()  # set while the worker runs no cell


def _stop_when_orphaned(parent: int) -> None:
    """When the sweep process is gone (kill -9, a crash), stop as SIGTERM stops a cell: its run
    is marked KILLED (a checkpointing cell saves first), then the worker exits, instead of
    training on for nobody."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    logging.getLogger(__name__).warning("the sweep process %d is gone: stopping", parent)
    if not _IDLE.is_set():
        os.kill(os.getpid(), signal.SIGTERM)
        _IDLE.wait(ORPHAN_GRACE_S)
    os._exit(1)


TAKEN = "taken"  # outcome of a cell another sweep is running or has finished


def _run_in_worker(cell: Cell) -> tuple[float, str | None]:
    """(seconds, None, or the failure reason, or ``TAKEN``); a failed run is recorded FAILED
    in MLflow."""
    from benchmarks.cells.execute import run_cell
    from benchmarks.tracking.claims import CellTakenError

    started = time.perf_counter()
    _IDLE.clear()
    try:
        run_cell(_RESOURCES, cell)
    except CellTakenError:
        return time.perf_counter() - started, TAKEN
    except Exception as error:  # recorded in MLflow by the tracker; the sweep goes on
        return time.perf_counter() - started, f"{type(error).__name__}: {error}"
    except KeyboardInterrupt:  # SIGTERM or Ctrl-C: the run is marked KILLED by now
        _exit_worker()
    finally:
        _IDLE.set()
    return time.perf_counter() - started, None


def _exit_worker() -> NoReturn:
    """Leave the pool at once: its queue already holds the next cells, which the worker would
    otherwise start (a stopped sweep would wait for them to finish)."""
    logging.getLogger(__name__).warning("stopped: this worker takes no other cell")
    logging.shutdown()
    os._exit(1)


class WorkerPool:
    """The worker processes, started again after one dies (a dead worker breaks the whole
    ``ProcessPoolExecutor``: every cell running on it fails with ``BrokenProcessPool``)."""

    def __init__(self, setup: WorkerSetup, workers: int):
        self.setup, self.workers = setup, workers
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        context = get_context("spawn")  # a clean interpreter: no inherited torch threads or locks
        started = context.Value("i", 0)  # workers number themselves from it, in start order
        return ProcessPoolExecutor(self.workers, context, _start_worker, (self.setup, started))

    def submit(self, cell: Cell) -> Future:
        return self.executor.submit(_run_in_worker, cell)

    def restart(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.executor = self._start()

    def stop(self) -> None:
        """Ctrl-C or SIGTERM: stop the workers' cells too (their runs end KILLED)."""
        for process in list(self.executor._processes.values()):  # no public handle on them
            process.terminate()
        self.executor.shutdown(wait=True, cancel_futures=True)


def run_sweep_parallel(
    setup: WorkerSetup,
    cells: list[Cell],
    workers: int,
    is_finished: Callable[[Cell], bool],
    reap_orphans: Callable[[], list[str]] = list,
) -> SweepReport:
    """Run ``cells`` on ``workers`` processes; ``is_finished(cell)`` says which to skip. When a
    worker dies, ``reap_orphans()`` marks the runs it left RUNNING as KILLED, new workers start,
    and the cells that were running are tried once more (a cell that kills its worker twice is
    recorded as failed); the other cells go on."""
    report = SweepReport()
    todo = cells_to_run(cells, is_finished, report)
    if not todo:  # a rerun of a finished sweep starts no worker
        return report
    schedule = Schedule(todo)
    progress = Progress(list(todo.values()), workers)
    log.info("%d cell(s) on %d worker(s), %d thread(s) each", len(todo), workers, setup.threads)
    pool = WorkerPool(setup, workers)
    running: dict[Future, str] = {}
    retried: set[str] = set()
    try:
        for key in schedule.ready():
            running[pool.submit(todo[key])] = key
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            lost = []
            for future in done:
                key = running.pop(future)
                if isinstance(future.exception(), BrokenProcessPool):  # its worker died
                    lost.append(key)
                    continue
                report.failed += schedule.settle(key, _outcome(future, todo[key], report, progress))
            if lost:
                lost += _drain(running)  # the rest of the broken pool's cells fail the same way
                for orphan in reap_orphans():
                    log.warning("worker died: run %s marked KILLED", orphan)
                pool.restart()
                for key in lost:
                    if key in retried:
                        reason = "its worker process died twice (out of memory? killed?)"
                        report.failed.append((todo[key].label, reason))
                        progress.done(todo[key], None)
                        report.failed += schedule.settle(key, reason)
                    else:
                        retried.add(key)
                        running[pool.submit(todo[key])] = key
            for key in schedule.ready():
                running[pool.submit(todo[key])] = key
    except KeyboardInterrupt:
        pool.stop()
        raise
    pool.executor.shutdown(wait=True)
    return report


def _drain(running: dict[Future, str]) -> list[str]:
    """Wait for every running future (of a broken pool) and return their cells."""
    wait(running)
    keys = list(running.values())
    running.clear()
    return keys


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
