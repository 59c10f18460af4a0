"""One registry style for methods, datasets and models: a decorator registers a builder under a
name with its typed options (a frozen dataclass), and every config is validated in one place.

A registry discovers its entries by importing every module of its package on first use, so a new
entry is one file with one decorator; modules of other installed packages join through the
registry's entry-point group (``core.plugins``).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from core.options import OptionError, options_from_mapping
from core.plugins import load_plugin_modules

B = TypeVar("B")  # what is registered: a method class, a dataset or model builder


@dataclasses.dataclass(frozen=True)
class Entry(Generic[B]):
    name: str
    builder: B
    options: type  # the frozen dataclass its config is read into


class Registry(Generic[B]):
    """Named builders of one kind (``kind`` names it in errors and configs: ``method=snip``)."""

    def __init__(self, kind: str, package: str, where: Callable[[str], str] | None = None):
        self.kind, self.package = kind, package
        self._where = where or (lambda name: f"{kind}={name}")  # how errors name a config
        self._entries: dict[str, Entry[B]] = {}
        self._discovered = False

    def register(self, name: str, options: type) -> Callable[[B], B]:
        """Decorator: make ``builder`` available as ``<kind>=name``, configured by ``options``."""
        if not dataclasses.is_dataclass(options):
            raise TypeError(f"{self.kind} {name!r}: options must be a dataclass, got {options}")

        def decorate(builder: B) -> B:
            known = self._entries.get(name)
            if known is not None and known.builder is not builder:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, builder, options)
            return builder

        return decorate

    def _discover(self) -> None:
        """Import every module of the package and of the plugins once, so their decorators run."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.walk_packages(package.__path__, f"{self.package}."):
            importlib.import_module(module.name)
        load_plugin_modules(self.kind)

    def shipped(self, name: str) -> bool:
        """Whether ``name`` comes with this project (not from a plugin or a test)."""
        return self.entry(name).builder.__module__.startswith(f"{self.package}.")

    def remove(self, name: str) -> None:
        """Forget an entry (a test's temporary method)."""
        del self._entries[name]

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def entry(self, name: str) -> Entry[B]:
        self._discover()
        if name not in self._entries:
            raise KeyError(
                f"unknown {self.kind} {name!r}; registered {self.kind}s: "
                f"{', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def build(self, name: str, options: Any) -> Any:
        """What ``name``'s builder makes of its typed ``options`` (from ``options()``)."""
        return self.entry(name).builder(options)

    def options(self, name: str, config: Mapping[str, Any]) -> Any:
        """``config`` (everything but ``name``) read into the entry's typed options; unknown,
        missing or mistyped options and failed checks raise ``OptionError`` naming them."""
        where = self._where(name)
        try:
            return options_from_mapping(self.entry(name).options, config, where)
        except OptionError:
            raise
        except (TypeError, ValueError) as error:  # a check in the options' __post_init__
            raise OptionError(f"{where}: {error}") from error
