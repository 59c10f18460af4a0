"""Model registry: ``model=name`` is a backbone builder registered with its typed options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.registry import Registry
from methods.networks.backbone import Backbone

MODELS: Registry[Callable[[Any], Backbone]] = Registry("model", "methods.networks")


def register_model(name: str, options: type):
    """Function decorator: ``builder(options) -> Backbone`` is ``model=name``."""
    return MODELS.register(name, options)


def get_backbone(name: str, config: Mapping[str, Any]) -> Backbone:
    """The parts of model ``name`` (config group ``model``; ``config``: everything but name)."""
    return MODELS.entry(name).builder(MODELS.options(name, config))
