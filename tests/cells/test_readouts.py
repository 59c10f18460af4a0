"""Early readouts of a pruned trained model: test metrics at ``protocol.readout_steps`` of its
fine-tuning, logged in the cell's own run (how criteria differ before fine-tuning evens them)."""

from __future__ import annotations

import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmarks.cells.builders import cell_dataset, cell_model_parts
from benchmarks.sweep.main import sweep
from benchmarks.training.evaluation import evaluate
from tests.helpers import smoke_cells, smoke_config, store_runs


def readout(run, step: int) -> dict[str, float]:
    prefix = f"readout/{step}/"
    return {k.removeprefix(prefix): v for k, v in run.data.metrics.items() if k.startswith(prefix)}


def test_a_structured_run_logs_every_test_metric_at_each_readout_step(finished_store):
    """experiment=smoke reads out at fine-tuning steps 0 and 2 (of 3)."""
    run = finished_store.runs["channel_magnitude"]
    tested = {k.removeprefix("test/") for k in run.data.metrics if k.startswith("test/")}
    client = MlflowClient(finished_store.uri)
    for step in (0, 2):
        assert set(readout(run, step)) == tested
        history = client.get_metric_history(run.info.run_id, f"readout/{step}/seg/mIoU")
        assert [m.step for m in history] == [step]
    assert not readout(run, 1) and not readout(run, 3)
    for untouched in ("dense", "disparse_static"):  # nothing pruned after training
        assert not any(
            k.startswith("readout/") for k in finished_store.runs[untouched].data.metrics
        )


@pytest.fixture(scope="module")
def magnitude_run(tmp_path_factory):
    """magnitude at 90%, read out right after pruning and at the last fine-tuning step."""
    folder = tmp_path_factory.mktemp("readouts")
    overrides = (
        f"tracking.uri=sqlite:///{folder}/mlflow.db",
        f"results_dir={folder}/results",
        f"dataset.cache_dir={folder}/cache",
        "method=magnitude",
        "sparsity=0.9",
        "seed=0",
        "workers=1",
        "protocol.readout_steps=[0,3]",
    )
    sweep(smoke_config(*overrides))
    runs = {r.data.tags["method"]: r for r in store_runs(f"sqlite:///{folder}/mlflow.db")}
    (cell,) = [c for c in smoke_cells(*overrides) if c.method["name"] == "magnitude"]
    return runs, cell, folder


def test_the_readout_at_step_0_is_the_trained_model_with_the_runs_masks(magnitude_run):
    """Recomputed apart: the dense run's weights times the run's final masks (magnitude never
    changes its masks while fine-tuning), evaluated on the test split."""
    runs, cell, folder = magnitude_run
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")

    def artifact(run, path: str):
        local = client.download_artifacts(run.info.run_id, path, str(folder / run.info.run_id))
        return torch.load(local, weights_only=True)

    bundle = cell_dataset(cell)
    model = cell_model_parts(cell).hard_sharing(bundle.tasks)
    model.load_state_dict(artifact(runs["dense"], "checkpoint/model.pt")["model"])
    masks = artifact(runs["magnitude"], "masks/masks.pt")["masks"]
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            parameters[name].mul_(mask)
    expected = evaluate(model, bundle.splits["test"], bundle.tasks, torch.device("cpu"), 8)
    assert readout(runs["magnitude"], 0) == pytest.approx(expected, rel=1e-5)


def test_the_readout_at_the_last_step_is_the_runs_test_result(magnitude_run):
    runs, _, _ = magnitude_run
    run = runs["magnitude"]
    tested = {
        k.removeprefix("test/"): v for k, v in run.data.metrics.items() if k.startswith("test/")
    }
    assert readout(run, 3) == tested
