"""The method registry: every compared method is a class registered by name.

Adding a method = one file in ``methods/`` with a ``@register_method("name")`` class (a subclass
of one of the kind bases in ``methods.lifecycle``), plus one config file
``benchmarks/conf/method/name.yaml``. Files in ``methods/`` are discovered on first use.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from core.options import describe_options, options_from_mapping
from methods.lifecycle import Method

M = TypeVar("M", bound=type[Method])
_METHODS: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: make a method available under ``name`` (``method=name`` in configs)."""

    def decorate(cls: M) -> M:
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is registered twice")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorate


@functools.cache
def _discover() -> None:
    """Import every module of ``methods`` once, so their ``@register_method`` calls run."""
    import methods

    for module in pkgutil.iter_modules(methods.__path__):
        importlib.import_module(f"methods.{module.name}")


def list_methods() -> list[str]:
    _discover()
    return sorted(_METHODS)


def get_method(name: str) -> type[Method]:
    _discover()
    if name not in _METHODS:
        raise KeyError(
            f"unknown method {name!r}; registered methods: {', '.join(sorted(_METHODS))}"
        )
    return _METHODS[name]


def build_method(name: str, options: Mapping[str, Any]) -> Method:
    """Instantiate a registered method from its config options (everything but ``name``)."""
    cls = get_method(name)
    return cls(options_from_mapping(cls.Hparams, options, f"method={name}"))


def method_help(name: str) -> list[tuple[str, str, str]]:
    return describe_options(get_method(name).Hparams)
