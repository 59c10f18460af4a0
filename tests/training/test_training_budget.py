"""Budget columns: steps and FLOPs of training, by hand on a tiny net and end to end."""

from __future__ import annotations

import dataclasses
import weakref

import pytest
import torch
from mlflow.tracking import MlflowClient
from torch import nn

from benchmarks.cells.resources import CellResources
from benchmarks.sweep.serial import run_sweep
from benchmarks.tracking.store import Tracker
from benchmarks.training.cost import TrainingCost
from methods.masks import MaskSet
from tests.helpers import smoke_cells


def tiny_net() -> nn.Module:
    # conv 1->2, 3x3, padding 1 on a 4x4 input: 18 weights, each used at 16 positions;
    # linear 32->3: 96 weights, each used once.
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(32, 3))


def keep_first(count: int, shape: tuple[int, ...]) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool).flatten()
    mask[:count] = True
    return mask.view(shape)


def test_step_flops_count_kept_weights_times_positions_and_follow_mask_changes():
    budget = TrainingCost(tiny_net(), (1, 4, 4), batch_size=4)
    masks = MaskSet({"0.weight": keep_first(5, (2, 1, 3, 3))}, {"0.weight": "shared"})
    # 5 kept conv weights x 16 positions + 96 unmasked linear weights = 176 MACs per input;
    # x 2 FLOPs per MAC x 3 passes x batch 4.
    assert budget.step_flops(masks) == 176 * 2 * 3 * 4
    budget.add_step(masks)
    budget.add_step(masks)
    masks.set_mask("0.weight", keep_first(10, (2, 1, 3, 3)))  # (10 x 16 + 96) = 256 MACs
    budget.add_step(masks)
    assert budget.steps == 3
    assert budget.flops == (2 * 176 + 256) * 2 * 3 * 4


def test_new_masks_at_a_freed_masks_address_are_counted_afresh():
    """IMP makes new masks each round; one may land where the last round's were freed. If the
    cost lets go of the masks it counted, the test puts new masks at their address on purpose;
    if it holds them, no new object can take that address, and the new masks are counted anyway."""
    budget = TrainingCost(tiny_net(), (1, 4, 4), batch_size=1)
    owners = {"0.weight": "shared"}
    first = MaskSet({"0.weight": keep_first(5, (2, 1, 3, 3))}, owners)
    assert budget.step_flops(first) == (5 * 16 + 96) * 6
    address, alive = id(first), weakref.ref(first)
    masks = {"0.weight": keep_first(10, (2, 1, 3, 3))}  # made first: nothing else takes the block
    del first  # freed now if nothing holds it (no cycle: no collection needed)
    kept_alive = []  # every miss stays allocated, so each new try takes another free block
    second = MaskSet(masks, owners)
    if alive() is None:
        while id(second) != address and len(kept_alive) < 10_000:
            kept_alive.append(second)
            second = MaskSet(masks, owners)
        assert id(second) == address, "no new masks took the freed address: the case is untested"
    else:
        assert id(second) != address
    assert budget.step_flops(second) == (10 * 16 + 96) * 6


@pytest.mark.slow
def test_runs_log_their_whole_training_budget_source_model_included(tmp_path):
    cache = f"dataset.cache_dir={tmp_path}/cache"
    cells = [
        cell
        for method in ("dense", "magnitude", "lth", "dense_same_steps")
        for cell in smoke_cells(f"method={method}", "sparsity=0.5", "seed=0", cache)
    ]
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "budget")
    report = run_sweep(CellResources(tracker, torch.device("cpu")), cells)
    assert not report.failed, report.failed
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = {
        r.data.tags["method"]: r.data.metrics for r in client.search_runs([tracker.experiment_id])
    }
    steps, finetune, batch = 6, 3, 8  # experiment=smoke
    assert runs["dense"]["budget/train_steps"] == steps
    assert runs["magnitude"]["budget/train_steps"] == steps + finetune
    assert runs["lth"]["budget/train_steps"] == steps + 2 * finetune  # two retraining rounds
    assert runs["dense_same_steps"]["budget/train_steps"] == runs["lth"]["budget/train_steps"]
    per_mac = 2 * 3 * batch
    dense_flops = steps * per_mac * runs["dense"]["model/macs"]
    assert runs["dense"]["budget/train_flops"] == pytest.approx(dense_flops)
    finetune_flops = finetune * per_mac * runs["magnitude"]["model/macs_nonzero"]
    assert runs["magnitude"]["budget/train_flops"] == pytest.approx(dense_flops + finetune_flops)


def test_a_training_step_is_counted_at_the_crop_not_the_evaluation_resolution(tmp_path):
    """Issue 25: real datasets train on crops of their images; the FLOPs of a step are those of
    the crop. A 3->2 3x3 conv (padding 1) keeps 54 weights, each used at every pixel."""
    from benchmarks.cells.phases import TrainingPhases
    from datasets.registry import build_dataset
    from tests.dataset_files import write_nyu_adashare
    from tests.helpers import TINY_PROTOCOL

    write_nyu_adashare(tmp_path / "nyu")
    bundle = build_dataset("nyuv2", {"root": str(tmp_path / "nyu"), "crop": [8, 12]})
    height, width = bundle.resolution
    assert bundle.train_image_shape == (3, 8, 12) and (height, width) != (8, 12)
    conv = nn.Conv2d(3, 2, 3, padding=1, bias=False)
    protocol = dataclasses.replace(TINY_PROTOCOL, batch_size=2)
    phases = TrainingPhases(conv, bundle, protocol, None, None, None, 0, torch.device("cpu"))
    assert phases.cost.step_flops(MaskSet({}, {})) == 54 * 8 * 12 * 2 * 3 * 2
