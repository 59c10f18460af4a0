"""Networks: the multitask contract, model backbones and the models a config can name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.tasks import TaskSpec
from methods.networks.backbone import Backbone
from methods.networks.base import SHARED, MultiTaskNet
from methods.networks.deeplab import deeplab_resnet34_backbone
from methods.networks.multitask_cnn import small_cnn_backbone

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "small_cnn": small_cnn_backbone,
    "deeplab_resnet34": deeplab_resnet34_backbone,
}


def get_backbone(name: str, options: Mapping[str, Any]) -> Backbone:
    """The parts of model ``name`` (config group ``model``); options are keyword arguments."""
    if name not in BACKBONES:
        raise KeyError(f"unknown model {name!r}; available models: {', '.join(sorted(BACKBONES))}")
    try:
        return BACKBONES[name](**options)
    except TypeError as error:
        raise ValueError(f"model={name}: bad option ({error})") from error


def build_model(name: str, options: Mapping[str, Any], tasks: Sequence[TaskSpec]) -> MultiTaskNet:
    """The hard-sharing network of model ``name`` for ``tasks``."""
    return get_backbone(name, options).hard_sharing(tasks)


__all__ = ["BACKBONES", "SHARED", "Backbone", "MultiTaskNet", "build_model", "get_backbone"]
