"""Model registry: ``model=name`` is a builder of the model's parts (``ModelParts``: encoder
stages and a head factory), registered with its typed options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.registry import Registry
from methods.networks.parts import ModelParts

MODELS: Registry[Callable[[Any], ModelParts]] = Registry("model", "methods.networks")


def register_model(name: str, options: type):
    """Function decorator: ``builder(options) -> ModelParts`` is ``model=name``."""
    return MODELS.register(name, options)


def model_parts(name: str, config: Mapping[str, Any]) -> ModelParts:
    """The parts of model ``name`` (config group ``model``; ``config``: everything but name)."""
    return MODELS.entry(name).builder(MODELS.options(name, config))
