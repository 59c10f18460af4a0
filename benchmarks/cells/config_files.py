"""Where config groups are found: this project's ``benchmarks/conf`` and, after it, the config
packages of installed plugins (``core.plugins``), for Hydra's composition and for the files the
sweep reads itself (a method's config under ``method=all``)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import CONF_DIR
from core.plugins import plugin_config_dirs, plugin_config_packages

SEARCH_PATH_KEY = "hydra.searchpath"


def config_dirs() -> list[Path]:
    """The folders of config groups, this project's first."""
    return [CONF_DIR, *plugin_config_dirs()]


def find_config(group: str, name: str) -> Path | None:
    """The file of option ``name`` of config group ``group`` (the first found), or None."""
    for folder in config_dirs():
        path = folder / group / f"{name}.yaml"
        if path.exists():
            return path
    return None


def with_plugin_configs(overrides: list[str]) -> list[str]:
    """``overrides`` plus the Hydra search path of the plugins' config packages (unless the
    command line sets ``hydra.searchpath`` itself)."""
    packages = plugin_config_packages()
    if not packages or any(o.lstrip("+").startswith(SEARCH_PATH_KEY) for o in overrides):
        return overrides
    paths = ",".join(f"pkg://{package}" for package in packages)
    return [*overrides, f"{SEARCH_PATH_KEY}=[{paths}]"]
