"""Shared fixtures: a tiny two-task model, a tiny rendered dataset, and one finished store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow.entities import Run

from core.tasks import make_task
from datasets.registry import build_dataset
from methods.networks import hard_sharing_network
from tests.helpers import make_context, smoke_config, store_runs


@pytest.fixture(scope="session")
def tiny_tasks():
    return (make_task("seg", num_classes=7), make_task("normal"))


@pytest.fixture
def tiny_model(tiny_tasks):
    torch.manual_seed(0)
    return hard_sharing_network("small_cnn", {"width": 4}, tiny_tasks)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    cache = tmp_path_factory.mktemp("synthetic-cache")
    return build_dataset(
        "synthetic",
        {
            "num_train": 8,
            "num_val": 4,
            "num_test": 4,
            "height": 16,
            "width": 24,
            "cache_dir": str(cache),
        },
    )


@pytest.fixture
def context_factory(tiny_bundle):
    def factory(model, sparsity, seed=0):
        return make_context(model, tiny_bundle, sparsity, seed)

    return factory


@dataclass(frozen=True)
class FinishedStore:
    """A store filled once per test session by the sweep as ``python -m benchmarks.run`` runs it
    (``benchmarks.sweep.main.sweep``, in this process), with the leaderboard it wrote."""

    folder: Path
    uri: str
    results: Path
    runs: dict[str, Run]  # by method: dense, disparse_static, channel_magnitude (50%, seed 0)


STORE_METHODS = ("disparse_static", "channel_magnitude")  # channel_magnitude trains dense first


@pytest.fixture(scope="session")
def finished_store(tmp_path_factory) -> FinishedStore:
    """For tests that only read a store: the smoke experiment's cells of ``STORE_METHODS`` at
    50%, seed 0, and dense; each method's sweep writes the leaderboard."""
    from benchmarks.sweep.main import sweep

    folder = tmp_path_factory.mktemp("finished-store")
    uri = f"sqlite:///{folder}/mlflow.db"
    for method in STORE_METHODS:
        cfg = smoke_config(
            f"tracking.uri={uri}",
            f"results_dir={folder}/results",
            f"dataset.cache_dir={folder}/cache",
            f"method={method}",
            "sparsity=0.5",
            "seed=0",
            "workers=1",
        )
        sweep(cfg)
    runs = {r.data.tags["method"]: r for r in store_runs(uri)}
    assert sorted(runs) == sorted(["dense", *STORE_METHODS]), sorted(runs)
    assert all(r.info.status == "FINISHED" for r in runs.values())
    return FinishedStore(folder, uri, folder / "results", runs)
