"""The method registry: every compared method is a class registered by name.

Adding a method = one file in ``methods/`` with a ``@register_method("name")`` class (a subclass
of one of the kind bases in ``methods.lifecycle``, with its options as the dataclass ``Options``),
plus one config file ``benchmarks/conf/method/name.yaml``. Files in ``methods/`` are discovered on
first use (``core.registry``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from core.options import describe_options
from core.registry import Registry
from methods.lifecycle import Method

M = TypeVar("M", bound=type[Method])
METHODS: Registry[type[Method]] = Registry("method", "methods")


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: make a method available under ``name`` (``method=name`` in configs),
    configured by its ``Options``."""

    def decorate(cls: M) -> M:
        METHODS.register(name, cls.Options)(cls)
        cls.name = name
        return cls

    return decorate


def list_methods() -> list[str]:
    return METHODS.names()


def get_method(name: str) -> type[Method]:
    return METHODS.entry(name).builder


def build_method(name: str, options: Mapping[str, Any]) -> Method:
    """Instantiate a registered method from its config options (everything but ``name``)."""
    return get_method(name)(METHODS.options(name, options))


def method_help(name: str) -> list[tuple[str, str, str]]:
    return describe_options(get_method(name).Options)
