"""Networks: the multitask contract, model backbones and the models a config can name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.tasks import TaskSpec
from methods.networks.backbone import Backbone
from methods.networks.base import SHARED, MultiTaskNet
from methods.networks.registry import MODELS, get_backbone, register_model


def build_model(name: str, options: Mapping[str, Any], tasks: Sequence[TaskSpec]) -> MultiTaskNet:
    """The hard-sharing network of model ``name`` for ``tasks``."""
    return get_backbone(name, options).hard_sharing(tasks)


__all__ = [
    "MODELS",
    "SHARED",
    "Backbone",
    "MultiTaskNet",
    "build_model",
    "get_backbone",
    "register_model",
]
