"""A registered method's config file, as ``method=name`` composes it."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from benchmarks import CONF_DIR
from benchmarks.cells.config_files import find_config


def load_method_config(name: str) -> dict[str, Any]:
    """The config file of a registered method, as the ``method=name`` override would compose it
    (from this project's ``conf/method/`` or a plugin's config package)."""
    path = find_config("method", name)
    if path is None:
        raise FileNotFoundError(
            f"method {name!r} is registered but has no config file {CONF_DIR}/method/{name}.yaml "
            f"(or method/{name}.yaml in a plugin's config package); add one with at least "
            f"`name: {name}`"
        )
    config = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert isinstance(config, dict)
    return config
