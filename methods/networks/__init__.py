"""Networks: the multitask contract and the models a config can name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from datasets.tasks import TaskSpec
from methods.networks.base import SHARED, MultiTaskNet
from methods.networks.multitask_cnn import build_multitask_cnn

MODELS: dict[str, Callable[..., MultiTaskNet]] = {"small_cnn": build_multitask_cnn}


def build_model(name: str, options: Mapping[str, Any], tasks: Sequence[TaskSpec]) -> MultiTaskNet:
    """Build model ``name`` (config group ``model``) for ``tasks``; options are keyword args."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; available models: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](tasks, **options)
    except TypeError as error:
        raise ValueError(f"model={name}: bad option ({error})") from error


__all__ = ["MODELS", "SHARED", "MultiTaskNet", "build_model"]
