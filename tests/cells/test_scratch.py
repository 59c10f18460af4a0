"""The scratch controls (Liu et al., ICLR 2019; ``benchmarks.cells.scratch``): how many steps
each trains, the re-drawn weights cut to a pruned network's shapes, and real smoke cells of an
unstructured and a structured method retrained from scratch, against their unablated runs."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.cells.resources import CellResources
from benchmarks.cells.scratch import cut_to_shapes, scratch_steps
from benchmarks.sweep.serial import run_sweep
from benchmarks.tracking.schema import SCRATCH_STEPS, TRAIN_FLOPS, TRAIN_STEPS
from benchmarks.tracking.store import Tracker
from tests.helpers import smoke_cells


def test_scratch_e_trains_as_many_steps_as_dense():
    assert scratch_steps("scratch_e", 800, 1e15, 1e6) == 800


def test_scratch_b_matches_the_pipelines_flops_and_at_most_doubles_dense_steps():
    assert scratch_steps("scratch_b", 200, 1000.0, 4.0) == 250
    assert scratch_steps("scratch_b", 200, 1001.0, 4.0) == 251  # a part step is a whole one
    assert scratch_steps("scratch_b", 200, 1e6, 4.0) == 400  # Liu et al.: at most 2x the epochs


def test_scratch_b_without_the_dense_runs_flops_says_what_to_do():
    with pytest.raises(ValueError, match="rerun the dense cell with rerun=stale"):
        scratch_steps("scratch_b", 200, math.nan, 4.0)


def test_the_fresh_draw_is_cut_to_the_pruned_shapes_keeping_the_leading_entries():
    fresh = {"conv": torch.arange(24.0).view(4, 3, 2), "count": torch.tensor(5)}
    trained = {"conv": torch.zeros(2, 3, 1), "count": torch.tensor(0)}
    cut = cut_to_shapes(fresh, trained)
    assert torch.equal(cut["conv"], torch.tensor([[[0.0], [2.0], [4.0]], [[6.0], [8.0], [10.0]]]))
    assert cut["count"].item() == 5
    assert cut_to_shapes(fresh, fresh)["conv"].data_ptr() != fresh["conv"].data_ptr()  # a copy


@pytest.fixture(scope="module")
def scratch_runs(tmp_path_factory):
    """Smoke cells at 50%: magnitude and channel_magnitude, each unablated and under both
    scratch controls, with their dense cell."""
    tmp = tmp_path_factory.mktemp("scratch")
    options = ("sparsity=0.5", "seed=0", "sweep.sanity_checks=[scratch_e,scratch_b]")
    cells = [
        cell
        for method in ("magnitude", "channel_magnitude")
        for cell in smoke_cells(f"method={method}", *options, f"dataset.cache_dir={tmp}/cache")
    ]
    tracker = Tracker(f"sqlite:///{tmp}/mlflow.db", "mtl-sparse-bench")
    report = run_sweep(CellResources(tracker, torch.device("cpu")), cells)
    assert not report.failed, report.failed
    runs = tracker.client.search_runs([tracker.experiment_id])
    by_cell = {(r.data.tags["method"], r.data.tags.get("sanity", "none")): r for r in runs}
    return tracker, by_cell, tmp


@pytest.mark.slow
@pytest.mark.parametrize("method", ["magnitude", "channel_magnitude"])
def test_a_scratch_control_retrains_the_same_pruned_network_for_its_steps(method, scratch_runs):
    tracker, runs, tmp = scratch_runs
    dense_steps = 6  # experiment=smoke's protocol.steps
    pipeline = runs[(method, "none")].data.metrics
    for control in ("scratch_e", "scratch_b"):
        metrics = runs[(method, control)].data.metrics
        steps = metrics[SCRATCH_STEPS]
        # everything that produced the model counts: dense, the method, the retraining
        assert metrics[TRAIN_STEPS] == pipeline[TRAIN_STEPS] + steps
        step_flops = (metrics[TRAIN_FLOPS] - pipeline[TRAIN_FLOPS]) / steps
        if control == "scratch_e":
            assert steps == dense_steps
        else:
            assert steps == min(math.ceil(pipeline[TRAIN_FLOPS] / step_flops), 2 * dense_steps)
        assert metrics["sparsity/overall"] == pytest.approx(pipeline["sparsity/overall"])
        ours, theirs = (
            torch.load(
                tracker.download(
                    runs[(method, c)].info.run_id, "masks/masks.pt", str(tmp / control / c)
                ),
                weights_only=True,
            )["masks"]
            for c in (control, "none")
        )
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[n], theirs[n]) for n in ours)  # the same pruned network
