"""A registered method's config file, as ``method=name`` composes it."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from benchmarks import CONF_DIR


def load_method_config(name: str) -> dict[str, Any]:
    """The config file of a registered method, as the ``method=name`` override would compose it."""
    path = CONF_DIR / "method" / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(
            f"method {name!r} is registered but has no config file {path}; add one with at least "
            f"`name: {name}`"
        )
    config = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert isinstance(config, dict)
    return config
