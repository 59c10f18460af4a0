"""Shared fixtures: a tiny two-task model and a tiny rendered dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datasets.registry import build_dataset
from datasets.tasks import make_task
from methods.context import PruneContext
from methods.networks import build_model

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_tasks():
    return (make_task("seg", num_classes=7), make_task("normal"))


@pytest.fixture
def tiny_model(tiny_tasks):
    torch.manual_seed(0)
    return build_model("small_cnn", {"width": 4}, tiny_tasks)


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


def make_context(model, bundle, sparsity: float, seed: int = 0, batch_size: int = 4):
    """A PruneContext over the first training batches of ``bundle`` (fixed order)."""
    images = torch.stack(
        [bundle.splits["train"][i]["image"] for i in range(len(bundle.splits["train"]))]
    )
    labels = {
        t.name: torch.stack(
            [bundle.splits["train"][i][t.name] for i in range(len(bundle.splits["train"]))]
        )
        for t in bundle.tasks
    }
    batches = [
        {
            "image": images[i : i + batch_size],
            **{k: v[i : i + batch_size] for k, v in labels.items()},
        }
        for i in range(0, len(images), batch_size)
    ]
    return PruneContext(
        model=model,
        tasks=bundle.tasks,
        loss_weights={},
        sparsity=sparsity,
        batches=lambda n: iter([batches[i % len(batches)] for i in range(n)]),
        generator=torch.Generator().manual_seed(seed),
    )


@pytest.fixture
def context_factory(tiny_bundle):
    def factory(model, sparsity, seed=0):
        return make_context(model, tiny_bundle, sparsity, seed)

    return factory
