"""What the tools that take a sweep's Hydra overrides share: their command line and the config
those overrides compose to."""

from __future__ import annotations

import argparse

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from benchmarks.cells.config_files import with_plugin_configs


def overrides_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser for ``python -m <prog> [OVERRIDES...]``: its docstring as the help text."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for benchmarks.run")
    return parser


def default_config(*overrides: str) -> DictConfig:
    """The config ``python -m benchmarks.run`` composes with ``overrides``."""
    with initialize_config_module("benchmarks.conf", version_base="1.3"):
        return compose("config", overrides=with_plugin_configs(list(overrides)))
