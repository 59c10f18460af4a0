"""Before and around a sweep: validate every cell, open the store, device and datasets, then run
the cells in this process or on workers (and share the cores under a Hydra launcher)."""

from __future__ import annotations

import logging

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def prepare_sweep(cfg: DictConfig, cells=None):
    """Cells (those of ``cfg``'s sweep unless given), validated; the store, device and datasets
    opened; the worker count. Raises on bad input before anything trains."""
    from benchmarks.cells.cell import stable_hash
    from benchmarks.cells.execute import RunEnv
    from benchmarks.sweep.device import resolve_device
    from benchmarks.sweep.expand import expand_sweep
    from benchmarks.sweep.workers import resolve_workers
    from benchmarks.tracking.store import Tracker
    from benchmarks.training.loop import Protocol
    from methods.networks import get_backbone
    from methods.registry import build_method

    cells = expand_sweep(cfg) if cells is None else cells
    checked: set[str] = set()
    for cell in cells:  # every option of every cell, before any training starts
        build_method(cell.method_name, cell.method_options)
        key = stable_hash([cell.model, cell.protocol])
        if key not in checked:
            Protocol.from_config(cell.protocol)
            get_backbone(cell.model["name"], cell.model_options)
            checked.add(key)
    device = resolve_device(str(cfg.device))
    workers = resolve_workers(cfg.workers, str(device))
    if is_multirun():
        workers = _share_cores_with_other_jobs(cfg.workers)
    tracker = Tracker(
        cfg.tracking.uri,
        cfg.tracking.experiment,
        cfg.tracking.artifact_location,
        float(cfg.tracking.stale_after_s),
    )
    for orphan in tracker.reap_orphans():
        log.warning("run %s was left RUNNING: marked KILLED; its cell runs again", orphan)
    env = RunEnv(tracker, device)
    for cell in cells:  # load (or render) each dataset now: a bad root fails before training
        env.dataset(cell)
    return cells, env, workers


def execute_sweep(cfg: DictConfig, cells, env, workers: int):
    """The sweep in this process (workers=1) or in worker processes."""
    from benchmarks.sweep.serial import run_sweep
    from benchmarks.sweep.workers import WorkerSetup, available_cores, run_sweep_parallel

    workers = min(workers, len(cells))  # one cell: no worker start-up, all threads
    if workers <= 1:
        return run_sweep(env, cells)
    setup = WorkerSetup(
        tracking_uri=cfg.tracking.uri,
        experiment=cfg.tracking.experiment,
        artifact_location=cfg.tracking.artifact_location,
        stale_after_s=float(cfg.tracking.stale_after_s),
        device=str(env.device),
        threads=max(1, available_cores() // workers),
    )
    return run_sweep_parallel(
        setup, cells, workers, lambda key: env.tracker.find_finished(key) is not None
    )


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _share_cores_with_other_jobs(workers: int | str) -> int:
    """Under a Hydra launcher (joblib, submitit) the launcher runs jobs side by side: each job
    runs its cells in its own process (``workers`` must be auto or 1; a process pool inside a
    joblib worker cannot start) with the cores split between the jobs that run at once."""
    import torch

    from benchmarks.sweep.workers import available_cores

    if str(workers) not in ("auto", "1"):
        raise ValueError(
            f"workers={workers} under a Hydra launcher: the launcher already runs jobs in "
            "parallel (hydra.launcher.n_jobs); leave workers=auto"
        )
    launcher = HydraConfig.get().launcher
    cpus = launcher.get("cpus_per_task")  # submitit: the job's own allocation
    jobs = launcher.get("n_jobs")  # joblib: jobs at once (-1: one per core)
    if cpus:
        torch.set_num_threads(int(cpus))
    elif jobs is not None:
        at_once = available_cores() if int(jobs) < 0 else int(jobs)
        torch.set_num_threads(max(1, available_cores() // max(1, at_once)))
    return 1
