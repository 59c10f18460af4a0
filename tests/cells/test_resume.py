"""Resumable cells: a cell stopped by SIGTERM after a checkpoint and rerun reaches exactly the
masks and metrics of an uninterrupted run (CPU); the data stream resumes mid-epoch."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient

from benchmarks.cells.resources import CellResources
from benchmarks.sweep.expand import expand_sweep
from benchmarks.sweep.serial import run_sweep
from benchmarks.tracking.store import Tracker
from benchmarks.training import preemption
from benchmarks.training.stream import BatchStream
from datasets.registry import build_dataset
from tests.helpers import TINY_PROTOCOL


def synthetic_split(tmp_path):
    options = {"tasks": ["seg", "normal"], "limit": 12, "cache_dir": str(tmp_path / "cache")}
    return build_dataset("synthetic", options).splits["train"]


def batches(stream, n):
    return [next(stream)["image"].clone() for _ in range(n)]


def test_a_restored_stream_continues_mid_epoch_with_the_same_batches(tmp_path):
    split = synthetic_split(tmp_path)  # 12 samples, batch 5: 2 batches per epoch
    stream = BatchStream(split, 5, torch.Generator().manual_seed(3), torch.device("cpu"))
    batches(stream, 3)  # into the second epoch
    saved = stream.state_dict()
    expected = batches(stream, 5)
    other = BatchStream(split, 5, torch.Generator().manual_seed(99), torch.device("cpu"))
    other.load_state_dict(saved)
    assert all(torch.equal(a, b) for a, b in zip(batches(other, 5), expected, strict=True))


def test_loader_workers_read_the_same_batches_in_the_same_order(tmp_path):
    split = synthetic_split(tmp_path)
    plain = BatchStream(split, 5, torch.Generator().manual_seed(3), torch.device("cpu"))
    workers = BatchStream(split, 5, torch.Generator().manual_seed(3), torch.device("cpu"), 2)
    assert all(
        torch.equal(a, b) for a, b in zip(batches(plain, 5), batches(workers, 5), strict=True)
    )


def cells(tmp_path, method, *overrides):
    with initialize_config_module("benchmarks.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "experiment=smoke",
                f"method={method}",
                "sparsity=0.9",
                "seed=0",
                "protocol.checkpoint_every=2",
                f"dataset.cache_dir={tmp_path}/cache",
                *overrides,
            ],
        )
    return expand_sweep(cfg)


def results(tracker, folder):
    """{method: (test metrics, masks, run)} of the store's finished runs."""
    client = MlflowClient(tracker.uri)
    out = {}
    for run in client.search_runs([tracker.experiment_id], "attributes.status = 'FINISHED'"):
        metrics = {k: v for k, v in run.data.metrics.items() if k.startswith("test/")}
        folder = tracker.download(run.info.run_id, "masks", str(folder / run.info.run_id))
        masks = torch.load(folder / "masks.pt", weights_only=True)["masks"]
        out[run.data.tags["method"]] = (metrics, masks, run)
    return out


def stop_at_call(n):
    """``stop_requested`` that answers yes on its n-th call (one call per training step)."""
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] == n

    return stop


@pytest.mark.parametrize(
    ("method", "stop_at"),
    [("dense", 3), ("rigl", 4), ("imp", 5)],  # imp: inside its second pruning round
)
def test_sigterm_then_rerun_resumes_and_matches_an_uninterrupted_run(
    tmp_path, monkeypatch, method, stop_at
):
    extra = ["method.delta_t=2"] if method == "rigl" else []
    sweep = cells(tmp_path, method, *extra)
    whole = Tracker(f"sqlite:///{tmp_path}/whole.db", "mtl-sparse-bench")
    run_sweep(CellResources(whole, torch.device("cpu")), sweep)

    cut = Tracker(f"sqlite:///{tmp_path}/cut.db", "mtl-sparse-bench")
    source = [] if method == "dense" else cells(tmp_path, "dense")
    run_sweep(CellResources(cut, torch.device("cpu")), source)  # the dense source, uninterrupted
    monkeypatch.setattr(preemption, "stop_requested", stop_at_call(stop_at))
    with pytest.raises(KeyboardInterrupt, match="SIGTERM: stopped after step"):
        run_sweep(CellResources(cut, torch.device("cpu")), sweep)
    monkeypatch.undo()
    report = run_sweep(CellResources(cut, torch.device("cpu")), sweep)
    assert report.ran == [c.label for c in sweep if c.method_name == method]

    expected = results(whole, tmp_path / "whole")[method]
    got = results(cut, tmp_path / "cut")[method]
    assert got[0] == expected[0]  # every test metric, exactly
    assert all(torch.equal(got[1][k], expected[1][k]) for k in expected[1])
    assert got[2].data.tags["resumed_at"].startswith("phase")
    killed = MlflowClient(cut.uri).get_run(got[2].data.tags["resumed_from_run_id"])
    assert killed.info.status == "KILLED"
    if method == "dense":  # resumed after step 3: steps 1-3 were not trained again
        history = MlflowClient(cut.uri).get_metric_history(got[2].info.run_id, "train/loss")
        assert min(m.step for m in history) == 4
        # snapshots saved before the kill were carried over (lth reads them)
        folder = cut.download(got[2].info.run_id, "snapshots", str(tmp_path / "snap"))
        assert sorted(p.name for p in folder.glob("*.pt")) == ["step_0.pt", "step_2.pt"]


def test_scoring_batches_stay_in_host_memory_and_reach_the_device_as_they_are_read(tiny_bundle):
    """Issue 25: 50 cached scoring batches held on a GPU for a whole cell. Read on the ``meta``
    device (any device but the CPU shows where a batch goes), they arrive there, while another
    reader's CPU batches of the same seed hold the values, the same on every call."""
    from benchmarks.cells.execute import scoring_batches

    on_meta = scoring_batches(tiny_bundle, TINY_PROTOCOL, 0, torch.device("meta"))
    assert all(v.device.type == "meta" for batch in on_meta(2) for v in batch.values())
    on_cpu = scoring_batches(tiny_bundle, TINY_PROTOCOL, 0, torch.device("cpu"))
    first, again = list(on_cpu(2)), list(on_cpu(3))
    assert len(again) == 3
    assert all(torch.equal(a[k], b[k]) for a, b in zip(first, again[:2], strict=True) for k in a)
