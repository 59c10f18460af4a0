"""Command-line overrides checked before Hydra composes them: a misspelt key such as
``method.scoring_batch=3`` gets the suite's message (the unknown key, the close valid ones, where
every option is listed) instead of Hydra's advice to force it in with ``+``, which would make a
typo silently do nothing."""

from __future__ import annotations

import dataclasses
import difflib
import sys

from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from benchmarks.cells.config_files import with_plugin_configs
from benchmarks.sweep.expand import ALL_METHODS

SWEEP_SYNTAX = (",", "glob(", "range(", "choice(", "interval(")


def _plain(overrides: list[str]) -> list[str]:
    """The overrides one composition can take (no flags, no sweeps, no Hydra settings)."""
    return [
        o
        for o in overrides
        if "=" in o
        and not o.startswith(("-", "hydra.", "hydra/"))
        and not any(token in o.split("=", 1)[1] for token in SWEEP_SYNTAX)
    ]


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _compose(overrides: list[str]) -> DictConfig:
    with initialize_config_module("benchmarks.conf", version_base="1.3"):
        return compose("config", overrides=with_plugin_configs(overrides))


def unknown_key_message(overrides: list[str]) -> str | None:
    """What is wrong when an override names a key that does not exist (None: nothing, or an
    error Hydra explains well itself)."""
    plain = _plain(overrides)
    try:
        _compose(plain)
        return None
    except ConfigCompositionException as error:
        if "not in struct" not in str(error.__cause__ or error):
            return None
    for index, override in enumerate(plain):
        key = _key(override)
        if override.startswith(("+", "~")):
            continue
        parent, _, leaf = key.rpartition(".")
        others = plain[:index] + plain[index + 1 :]
        try:
            root = _compose(others)
        except ConfigCompositionException:
            continue
        node = OmegaConf.select(root, parent) if parent else root
        if node is None and parent.split(".")[0] not in root:
            parent, leaf, node = "", key.split(".")[0], root
        if parent == "method" and node is not None and node.get("name") == ALL_METHODS:
            return _every_method_message(leaf)
        if isinstance(node, DictConfig) and leaf not in node:
            return _message(parent, leaf, sorted(str(k) for k in node))
    return None


def _every_method_message(leaf: str) -> str:
    """``method.<leaf>=...`` under ``method=all``, where each method has its own options."""
    from methods.registry import get_method, list_methods

    owners: dict[str, list[str]] = {}
    for name in list_methods():
        for option in dataclasses.fields(get_method(name).Options):
            owners.setdefault(option.name, []).append(name)
    close = difflib.get_close_matches(leaf, list(owners), n=1, cutoff=0.6)
    option = close[0] if close else leaf
    example = owners[option][0] if option in owners else "snip"
    known = f"; methods with an option {option}: {', '.join(owners[option])}" if close else ""
    return (
        f"method.{leaf}: method=all runs every method with its own options, so there is no "
        f"method.* option to set; set one method's option with "
        f"method_options.<method>.{option}=... (e.g. method_options.{example}.{option}=...){known}"
    )


def _message(parent: str, leaf: str, known: list[str]) -> str:
    where = f"{parent}." if parent else ""
    close = difflib.get_close_matches(leaf, known, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(where + c for c in close)}?)" if close else ""
    valid = f"valid {where}* options" if parent else "valid top-level options and groups"
    return (
        f"unknown option {where}{leaf}{hint}; {valid}: {', '.join(known)}. "
        "`python -m benchmarks.run --help` lists every option with its meaning"
    )


def check_command_line(arguments: list[str]) -> None:
    """Exit with the suite's message when an override names an option that does not exist."""
    message = unknown_key_message(arguments)
    if message is not None:
        print(f"configuration error: {message}", file=sys.stderr)
        sys.exit(2)
