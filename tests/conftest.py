"""Shared fixtures: a tiny two-task model and a tiny rendered dataset."""

from __future__ import annotations

import pytest
import torch

from core.tasks import make_task
from datasets.registry import build_dataset
from methods.networks import hard_sharing_network
from tests.helpers import make_context


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
