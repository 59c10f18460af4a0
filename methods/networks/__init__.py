"""Networks: the multitask contract, the parts a model is built from, and the models a config
can name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.tasks import TaskSpec
from methods.networks.base import SHARED, MultiTaskNet
from methods.networks.parts import ModelParts
from methods.networks.registry import MODELS, model_parts, register_model


def hard_sharing_network(
    name: str, options: Mapping[str, Any], tasks: Sequence[TaskSpec]
) -> MultiTaskNet:
    """The hard-sharing network of model ``name`` for ``tasks``."""
    return model_parts(name, options).hard_sharing(tasks)


__all__ = [
    "MODELS",
    "SHARED",
    "ModelParts",
    "MultiTaskNet",
    "hard_sharing_network",
    "model_parts",
    "register_model",
]
