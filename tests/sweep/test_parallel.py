"""Parallel cells: dependency order, worker counts."""

from __future__ import annotations

import pytest
import torch

from benchmarks.sweep.loader_workers import loader_workers
from benchmarks.sweep.report import SweepReport
from benchmarks.sweep.schedule import Schedule, cells_to_run
from benchmarks.sweep.setup import execute_sweep, prepare_sweep
from benchmarks.sweep.workers import resolve_workers, worker_device
from tests.helpers import smoke_cells, smoke_config, store_runs


def by_method(cells):
    return {c.method_name: c for c in cells}


def test_a_pretrained_cell_waits_for_its_dense_cell_and_the_dense_cell_is_added_once():
    cells = [
        *smoke_cells("method=magnitude", "sparsity=0.5", "seed=0"),
        *smoke_cells("method=imp", "sparsity=0.5", "seed=0"),
        *smoke_cells("method=snip", "sparsity=0.5", "seed=0"),
    ]
    todo = cells_to_run(cells, lambda key: False, SweepReport())
    assert sorted(c.method_name for c in todo.values()) == ["dense", "imp", "magnitude", "snip"]
    schedule = Schedule(todo)
    first = {todo[k].method_name for k in schedule.ready()}
    assert first == {"dense", "snip"}
    assert schedule.ready() == []  # nothing is handed out twice
    dense = next(k for k, c in todo.items() if c.method_name == "dense")
    assert schedule.settle(dense, None) == []
    assert {todo[k].method_name for k in schedule.ready()} == {"imp", "magnitude"}


def test_dependents_of_a_failed_source_fail_without_running():
    cells = smoke_cells("method=magnitude", "sparsity=0.5", "seed=0")
    todo = cells_to_run(cells, lambda key: False, SweepReport())
    schedule = Schedule(todo)
    (dense,) = schedule.ready()
    dropped = schedule.settle(dense, "DivergenceError: loss is nan")
    assert dropped == [(cells[0].label, "source cell failed: DivergenceError: loss is nan")]
    assert schedule.ready() == []


def test_finished_cells_are_skipped_and_a_finished_source_is_not_waited_for():
    cells = smoke_cells("method=magnitude", "sparsity=0.5", "seed=0")
    report = SweepReport()
    todo = cells_to_run(cells, lambda cell: cell.cell_id != cells[0].cell_id, report)
    assert [c.method_name for c in todo.values()] == ["magnitude"]
    assert list(Schedule(todo).ready()) == [cells[0].cell_id]


@pytest.mark.parametrize(
    ("workers", "device", "expected"), [("auto", "cuda:0", 1), (3, "cpu", 3), ("2", "cpu", 2)]
)
def test_worker_count(workers, device, expected):
    assert resolve_workers(workers, device) == expected


def test_auto_runs_cells_per_gpu_workers_on_every_visible_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert resolve_workers("auto", "cuda") == 8
    assert resolve_workers("auto", "cuda", cells_per_gpu=2) == 16
    assert resolve_workers("auto", "cuda:3") == 1  # a chosen GPU: one worker on it


@pytest.mark.parametrize(
    ("device", "cells", "cores", "expected"),
    [
        ("cpu", 2, 64, 0),
        ("cuda", 1, 8, 7),
        ("cuda", 8, 64, 7),
        ("cuda", 16, 64, 3),
        ("cuda", 4, 2, 1),
    ],
)
def test_auto_loader_workers_share_the_jobs_cores_among_its_gpu_cells(
    device, cells, cores, expected
):
    """Issue 25: the presets read with 4 loader processes whatever the job had. On a GPU each
    cell keeps one core for itself; the CPU's cores train (no loader processes there)."""
    assert loader_workers(device, cells, cores) == expected


def test_auto_loader_workers_are_resolved_when_the_sweep_expands():
    (cell,) = smoke_cells("method=dense", "seed=0", "protocol.num_workers=auto", "device=cpu")
    assert cell.protocol["num_workers"] == 0 and cell.protocol_options.num_workers == 0
    (given,) = smoke_cells("method=dense", "seed=0", "protocol.num_workers=3")
    assert given.protocol_options.num_workers == 3
    assert given.cell_id == cell.cell_id  # a reading detail, not part of what the cell computes


def test_workers_on_cuda_take_the_gpus_in_turn():
    """Issue 25: every worker trained on GPU 0. Worker i takes GPU i mod the GPUs."""
    assert [worker_device("cuda", i, 4) for i in range(6)] == [
        "cuda:0",
        "cuda:1",
        "cuda:2",
        "cuda:3",
        "cuda:0",
        "cuda:1",
    ]
    assert worker_device("cuda:2", 5, 4) == "cuda:2"  # chosen: all on it
    assert worker_device("cpu", 1, 0) == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_workers_on_cuda_run_their_cells_on_two_different_gpus(tmp_path):
    cfg = smoke_config(
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"results_dir={tmp_path}/results",
        f"dataset.cache_dir={tmp_path}/cache",
        "method=dense",
        "sweep.seeds=[0,1,2,3]",
        "device=cuda",
        "workers=2",
    )
    cells, resources, workers, threads = prepare_sweep(cfg)
    report = execute_sweep(cells, resources, workers, threads)
    assert not report.failed, report.summary()
    devices = {r.data.params["device"] for r in store_runs(f"sqlite:///{tmp_path}/mlflow.db")}
    assert devices == {"cuda:0", "cuda:1"}


@pytest.mark.parametrize("workers", [0, -1, "two", 1.5])
def test_bad_worker_count_is_named(workers):
    with pytest.raises(ValueError, match="give a positive integer or auto"):
        resolve_workers(workers, "cpu")


def test_two_workers_run_a_pretrained_cell_after_its_dense_source_each_once(tmp_path):
    """In this process, as ``workers=2`` runs a sweep: the pool of worker processes, the
    schedule that holds the pretrained cell back until its dense cell has finished."""
    cfg = smoke_config(
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"results_dir={tmp_path}/results",
        f"dataset.cache_dir={tmp_path}/cache",
        "method=magnitude",
        "sparsity=0.5",
        "sweep.seeds=[0,1]",
        "workers=2",
    )
    cells, resources, workers, threads = prepare_sweep(cfg)
    assert workers == 2
    report = execute_sweep(cells, resources, workers, threads)
    assert not report.failed, report.summary()
    runs = store_runs(f"sqlite:///{tmp_path}/mlflow.db")
    assert sorted((r.data.tags["method"], r.data.tags["seed"]) for r in runs) == [
        ("dense", "0"),
        ("dense", "1"),
        ("magnitude", "0"),
        ("magnitude", "1"),
    ]
    dense = {r.data.tags["seed"]: r for r in runs if r.data.tags["method"] == "dense"}
    for run in (r for r in runs if r.data.tags["method"] == "magnitude"):
        source = dense[run.data.tags["seed"]]
        assert run.data.tags["pretrained_run_id"] == source.info.run_id
        assert run.info.start_time >= source.info.end_time  # started after its source ended
