"""Methods, models and datasets from other installed packages, found through entry points.

A package adds to a registry by naming a module in the registry's entry-point group (importing it
runs its ``@register_*`` decorators), and adds its config files by naming a package that holds
``method/``, ``model/`` or ``dataset/`` folders of yaml files in ``CONFIG_GROUP``::

    [project.entry-points."mtl_sparse_bench.methods"]
    my_method = "my_package.my_method"

    [project.entry-points."mtl_sparse_bench.configs"]
    my_package = "my_package.conf"
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

GROUP_PREFIX = "mtl_sparse_bench"
CONFIG_GROUP = f"{GROUP_PREFIX}.configs"


class PluginError(RuntimeError):
    """An installed plugin that cannot be loaded (named with its distribution)."""


def group_of(kind: str) -> str:
    """The entry-point group of a registry of ``kind`` (method -> ``mtl_sparse_bench.methods``)."""
    return f"{GROUP_PREFIX}.{kind}s"


def _origin(entry: EntryPoint) -> str:
    dist = entry.dist.name if entry.dist is not None else "an unknown distribution"
    return f"entry point {entry.name} = {entry.value!r} of {dist} (group {entry.group})"


def load_plugin_modules(kind: str) -> list[str]:
    """Import every module named in ``kind``'s group; the names of those imported."""
    loaded = []
    for entry in sorted(entry_points(group=group_of(kind)), key=lambda e: e.name):
        try:
            importlib.import_module(entry.value)
        except Exception as error:
            raise PluginError(
                f"cannot import the {kind} plugin {_origin(entry)}: {error!r}; fix or "
                f"uninstall that package"
            ) from error
        loaded.append(entry.value)
    return loaded


def plugin_config_dirs() -> list[Path]:
    """The folders of config groups that installed plugins add (``CONFIG_GROUP``)."""
    folders = []
    for entry in sorted(entry_points(group=CONFIG_GROUP), key=lambda e: e.name):
        try:
            package = importlib.import_module(entry.value)
        except Exception as error:
            raise PluginError(
                f"cannot import the config package of {_origin(entry)}: {error!r}"
            ) from error
        locations = list(getattr(package, "__path__", []))
        if not locations:
            raise PluginError(f"{_origin(entry)} must name a package (a folder of config groups)")
        folders.append(Path(locations[0]))
    return folders


def plugin_config_packages() -> list[str]:
    """The package names of ``plugin_config_dirs``, as Hydra's ``pkg://`` search path takes them."""
    return [entry.value for entry in sorted(entry_points(group=CONFIG_GROUP), key=lambda e: e.name)]
