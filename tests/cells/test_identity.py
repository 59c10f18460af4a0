"""A cell's identity: only options that differ from their defaults count, so adding an option
with a default keeps every finished cell; a changed default is a new cell; paths never count;
runs made before cell ids are re-keyed and found again."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmarks.cells import identity
from benchmarks.cells.cell import Cell, flatten
from benchmarks.cells.resources import CellResources
from benchmarks.cells.stored import cell_from_params, rekey_legacy_runs
from benchmarks.sweep.serial import run_sweep
from benchmarks.sweep.setup import prepare_sweep
from benchmarks.sweep.staleness import stale_cells
from benchmarks.tracking.store import Tracker
from benchmarks.training.protocol import Protocol
from core.registry import Entry
from methods.registry import METHODS
from tests.helpers import smoke_cells, smoke_config

pytestmark = pytest.mark.slow


def with_new_options(monkeypatch, method: str) -> None:
    """As if a developer added a protocol option and an option of ``method``, each with a
    default that reproduces today's behaviour."""
    protocol = dataclasses.make_dataclass(
        "ProtocolWithNewOption",
        [("warmup_steps", int, dataclasses.field(default=0, metadata={"help": "new"}))],
        bases=(Protocol,),
        frozen=True,
    )
    monkeypatch.setattr(identity, "Protocol", protocol)
    entry = METHODS.entry(method)
    options = dataclasses.make_dataclass(
        "OptionsWithNewOption",
        [("temperature", float, dataclasses.field(default=1.0))],
        bases=(entry.options,),
        frozen=True,
    )
    monkeypatch.setitem(METHODS._entries, method, Entry(method, entry.builder, options))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A store where snip (50%, seed 0) finished, and its cell."""
    tmp = tmp_path_factory.mktemp("identity")
    tracker = Tracker(f"sqlite:///{tmp}/mlflow.db", "x")
    cells = smoke_cells("method=snip", "sparsity=0.5", f"dataset.cache_dir={tmp}/cache")
    report = run_sweep(CellResources(tracker, torch.device("cpu")), cells)
    assert not report.failed and len(report.ran) == 1
    return tracker, cells, tmp


def test_adding_options_with_defaults_keeps_every_finished_cell(finished, monkeypatch):
    tracker, cells, tmp = finished
    before = [c.cell_id for c in cells]
    with_new_options(monkeypatch, "snip")
    # the option files now state the new options, at their defaults
    again = smoke_cells(
        "method=snip",
        "sparsity=0.5",
        f"dataset.cache_dir={tmp}/cache",
        "+protocol.warmup_steps=0",
        "+method.temperature=1.0",
    )
    assert [c.cell_id for c in again] == before
    report = run_sweep(CellResources(tracker, torch.device("cpu")), again)
    assert report.ran == [] and len(report.skipped) == 1  # nothing trains again
    changed = smoke_cells(
        "method=snip", "sparsity=0.5", f"dataset.cache_dir={tmp}/cache", "+method.temperature=2"
    )
    assert changed[-1].cell_id != before[-1]  # a value other than the default is a new cell


def test_a_changed_default_is_a_new_cell_though_its_id_is_the_same(finished, monkeypatch):
    tracker, cells, _ = finished
    (snip,) = cells
    bare = dataclasses.replace(snip, method={"name": "snip"})  # every option at its default
    entry = METHODS.entry("snip")
    default = entry.options.__dataclass_fields__["scoring_batches"].default
    assert snip.method["scoring_batches"] == default  # the run above used today's default
    assert tracker.find_finished(bare.key) is not None
    changed = dataclasses.make_dataclass(
        "NewDefault",
        [("scoring_batches", int, dataclasses.field(default=default + 1))],
        bases=(entry.options,),
        frozen=True,
    )
    monkeypatch.setitem(METHODS._entries, "snip", Entry("snip", entry.builder, changed))
    moved = dataclasses.replace(snip, method={"name": "snip"})
    assert moved.cell_id == bare.cell_id  # the id holds non-default options only ...
    assert tracker.find_finished(moved.key) is None  # ... the logged params tell them apart


def test_where_data_lives_is_not_part_of_the_identity():
    a, b = (
        smoke_cells("method=dense", "seed=0", f"dataset.cache_dir={d}")[0] for d in ("/x", "/y")
    )
    assert a.cell_id == b.cell_id and a.setting_id == b.setting_id
    nyu = {"name": "nyuv2", "root": "/data/a", "loss_weights": {}}
    moved = dataclasses.replace(a, dataset=nyu).cell_id
    assert moved == dataclasses.replace(a, dataset=nyu | {"root": "/mnt/b"}).cell_id
    assert a.protocol["checkpoint_every"] is None
    resumable = dataclasses.replace(a, protocol=a.protocol | {"checkpoint_every": 5})
    assert resumable.cell_id == a.cell_id


def legacy_run(tracker: Tracker, cell: Cell) -> str:
    """A finished run as the code before cell ids logged it: the hash of every option as its
    identity, the configured (not resolved) options as params, no code fingerprint."""
    tags = {"config_hash": "0123456789ab", "setting_hash": "ba9876543210", "method": "snip"}
    run = tracker.client.create_run(tracker.experiment_id, tags=tags)
    for key, value in flatten({**cell.as_dict(), "device": "cpu"}).items():
        tracker.client.log_param(run.info.run_id, key, value)
    tracker.client.log_metric(run.info.run_id, "test/seg/mIoU", 42.0)
    tracker.client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def test_a_store_from_before_cell_ids_is_re_keyed_and_its_runs_count_as_stale(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "x")
    cell = smoke_cells("method=snip", "sparsity=0.5", f"dataset.cache_dir={tmp_path}")[-1]
    run_id = legacy_run(tracker, cell)
    assert tracker.find_finished(cell.key) is None  # no cell id yet
    assert rekey_legacy_runs(tracker) == 1
    assert rekey_legacy_runs(tracker) == 0  # once
    found = tracker.find_finished(cell.key)
    assert found is not None and found.info.run_id == run_id
    assert found.data.tags["setting_id"] == cell.setting_id
    assert stale_cells(tracker, [cell]) == [cell]  # its code is unknown


def test_a_thread_count_other_than_one_is_another_cell_and_another_setting():
    """Issue 29 N9: the thread count changes a CPU cell's numbers, so a 2-thread run is neither
    reused for a 1-thread cell nor averaged with 1-thread seeds; one thread (and a GPU cell,
    whose thread count is not recorded) keeps the ids cells had before threads counted."""
    (cell,) = smoke_cells("method=magnitude", "sparsity=0.5", "seed=0")
    one, two = dataclasses.replace(cell, threads=1), dataclasses.replace(cell, threads=2)
    assert one.cell_id == cell.cell_id and one.setting_id == cell.setting_id
    assert two.cell_id != cell.cell_id and two.setting_id != cell.setting_id
    back = cell_from_params(flatten(two.resolved))
    assert back.threads == 2 and back.cell_id == two.cell_id
    assert cell_from_params(flatten(one.resolved)).cell_id == one.cell_id


def test_a_sweep_does_not_take_a_run_made_with_other_threads_as_done(finished_store):
    config = ["method=disparse_static", "sparsity=0.5", "seed=0", "workers=1"]
    config.append(f"tracking.uri={finished_store.uri}")
    for threads, done in ((1, True), (2, False)):
        cfg = smoke_config(*config, f"threads_per_cell={threads}")
        cells, resources, _, _ = prepare_sweep(cfg)
        (cell,) = [c for c in cells if c.method_name == "disparse_static"]
        assert cell.threads == threads
        assert (resources.tracker.find_finished(cell.key) is not None) == done, threads
