"""Before and around a sweep: validate every cell, open the store, device and datasets, then run
the cells in this process or on workers (and share the cores under a Hydra launcher)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from benchmarks.cells.builders import cell_method, cell_model_parts
from benchmarks.cells.cell import Cell
from benchmarks.cells.identity import stable_hash
from benchmarks.cells.resources import CellResources
from benchmarks.cells.stored import rekey_legacy_runs
from benchmarks.sweep.device import resolve_device
from benchmarks.sweep.expand import expand_sweep
from benchmarks.sweep.known_keys import check_known_keys
from benchmarks.sweep.serial import run_sweep
from benchmarks.sweep.staleness import report_stale
from benchmarks.sweep.workers import (
    WorkerSetup,
    available_cores,
    cells_per_gpu,
    positive_integer,
    resolve_workers,
    run_sweep_parallel,
)
from benchmarks.tracking.keys import Reuse
from benchmarks.tracking.store import StoreConfig
from methods.networks.contract import check_model_parts

log = logging.getLogger(__name__)


def store_config(cfg: DictConfig, started_ms: int | None = None) -> StoreConfig:
    """The ``tracking`` group and ``rerun`` (rerun=all takes runs started from ``started_ms``)."""
    since = int(time.time() * 1000) if started_ms is None else started_ms
    return StoreConfig(
        uri=cfg.tracking.uri,
        experiment=cfg.tracking.experiment,
        artifact_location=cfg.tracking.artifact_location,
        stale_after_s=stale_after_s(cfg.tracking.stale_after_s),
        reuse=Reuse(str(cfg.get("rerun", "none")), since),
    )


def stale_after_s(value: object) -> float:
    """``tracking.stale_after_s`` as seconds; a run's heartbeat beats a quarter as often."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0:
        raise ValueError(
            f"tracking.stale_after_s={value!r}: give the seconds without a heartbeat after which "
            "another sweep takes a RUNNING run for an orphan, a number above 0 (default 600)"
        )
    return seconds


def check_results_dir(path: str) -> None:
    """Create ``results_dir`` now, so a bad one fails before the first cell, not after all."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"results_dir={path!r} is a file, not a folder; pass results_dir=<a folder>"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"results_dir={path!r} cannot be created ({error})") from error


def validate(cells: list[Cell]) -> None:
    """Every option of every cell, before any training starts (errors name the option)."""
    checked: set[tuple[str, bool]] = set()
    for cell in cells:
        _ = cell.key  # reads every group into its typed options
        method = cell_method(cell)
        method.check_protocol(tuple(cell.protocol_options.snapshot_steps))
        model = (stable_hash(cell.model), method.reads_inside_stages)
        if model not in checked:  # a model's builder checks its files (pretrained weights)
            check_model_parts(cell.model["name"], cell_model_parts(cell), model[1])
            checked.add(model)


def prepare_sweep(cfg: DictConfig, cells: list[Cell] | None = None):
    """Cells (those of ``cfg``'s sweep unless given), validated; outputs checked; the store,
    device and datasets opened; stale cells reported; the worker count. Raises on bad input
    before anything trains."""
    check_known_keys(cfg)
    cells = expand_sweep(cfg) if cells is None else cells
    validate(cells)
    check_results_dir(str(cfg.results_dir))
    device = resolve_device(str(cfg.device))
    workers = resolve_workers(cfg.workers, str(device), cells_per_gpu(cfg.get("cells_per_gpu", 1)))
    if is_multirun():
        workers = _share_cores_with_other_jobs(cfg.workers)
    threads = threads_per_cell(cfg.get("threads_per_cell"), device, min(workers, len(cells)))
    if device.type == "cpu":  # a CPU cell's numbers depend on its thread count: its identity
        cells = [replace(cell, threads=threads) for cell in cells]
    store = store_config(cfg)
    tracker = store.open()
    tracker.check_artifacts_writable()
    for orphan in tracker.reap_orphans():
        log.warning("run %s was left RUNNING: marked KILLED; its cell runs again", orphan)
    rekey_legacy_runs(tracker)
    report_stale(tracker, cells)
    resources = CellResources(tracker, device)
    for cell in cells:  # load (or render) each dataset now: a bad root fails before training
        resources.dataset(cell)
    return cells, resources, workers, threads


def threads_per_cell(chosen: int | str | None, device, workers: int) -> int:
    """torch threads of each cell: ``threads_per_cell`` on the CPU (its result depends on it,
    so one value for every way a sweep runs), cores/workers on a GPU or when it is null."""
    if chosen is None or device.type != "cpu":
        return max(1, available_cores() // max(1, workers))
    return positive_integer("threads_per_cell", chosen, "null")


def execute_sweep(cells: list[Cell], resources: CellResources, workers: int, threads: int):
    """The sweep in this process (workers=1) or in worker processes, ``threads`` torch threads
    per cell."""
    workers = min(workers, len(cells))  # one cell: no worker start-up
    if workers <= 1:
        torch.set_num_threads(threads)
        return run_sweep(resources, cells)
    tracker = resources.tracker
    setup = WorkerSetup(tracker.config, str(resources.device), threads)
    return run_sweep_parallel(
        setup,
        cells,
        workers,
        lambda cell: tracker.find_finished(cell.key) is not None,
        tracker.reap_orphans,
    )


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _share_cores_with_other_jobs(workers: int | str) -> int:
    """Under a Hydra launcher (joblib, submitit) the launcher runs jobs side by side: each job
    runs its cells in its own process (``workers`` must be auto or 1; a process pool inside a
    joblib worker cannot start) with the cores split between the jobs that run at once."""
    if str(workers) not in ("auto", "1"):
        raise ValueError(
            f"workers={workers} under a Hydra launcher: the launcher already runs jobs in "
            "parallel (hydra.launcher.n_jobs); leave workers=auto"
        )
    launcher = HydraConfig.get().launcher
    cpus = launcher.get("cpus_per_task")  # submitit: the job's own allocation
    jobs = launcher.get("n_jobs")  # joblib: jobs at once (-1: one per core)
    if cpus:
        torch.set_num_threads(int(cpus))  # threads_per_cell=null uses them all
    elif jobs is not None:
        at_once = available_cores() if int(jobs) < 0 else int(jobs)
        torch.set_num_threads(max(1, available_cores() // max(1, at_once)))
    return 1
