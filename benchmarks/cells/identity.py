"""A cell's identity: the options that differ from their registered defaults (as open_lth hashes
only non-default options), so adding an option with a default keeps every finished cell.

Each config group is read into its typed options (``Protocol``, a dataset's, model's or method's
options dataclass); an option without a default always counts, one equal to its default does not.
Options whose field says ``metadata={"identity": False}`` say where or how a cell runs, not what
it computes (data paths, cache folders, checkpoint cadence, loader workers): they never count.
The fully resolved options are logged with each run, so a default that changes later is noticed
(``tracking.store.CellKey.matches``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from benchmarks.training.protocol import Protocol
from datasets.registry import DATASETS
from methods.networks import MODELS
from methods.registry import METHODS

GROUPS = ("dataset", "model", "protocol", "method")
NOT_OPTIONS = {"dataset": ("loss_weights",)}  # group keys that are no builder's options


def stable_hash(value: Any, length: int = 12) -> str:
    """Hash of a JSON-serialisable value, independent of key order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def plain(value: Any) -> Any:
    """Tuples as lists, recursively: one spelling of a value, whether it came from a config
    (lists) or a dataclass (tuples)."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


REGISTRIES = {"dataset": DATASETS, "model": MODELS, "method": METHODS}  # protocol: Protocol


def typed_options(group: str, config: Mapping[str, Any]) -> Any:
    """A group's config read into its typed options (checked: errors name the option)."""
    name = str(config.get("name"))
    options = {k: v for k, v in config.items() if k not in ("name", *NOT_OPTIONS.get(group, ()))}
    if group == "protocol":
        return Protocol.from_config(config)
    return REGISTRIES[group].options(name, options)


def _not_options(group: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The group's name and the keys no builder takes, when set (no loss weights = none)."""
    keys = ("name", *NOT_OPTIONS.get(group, ()))
    return {k: plain(config[k]) for k in keys if config.get(k) not in (None, {})}


def _fields(options: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(options) if f.metadata.get("identity", True)]


def resolved(group: str, config: Mapping[str, Any], options: Any) -> dict[str, Any]:
    """Every option of the group with its value (defaults filled in), plus what the builder does
    not take (``name``, the dataset's loss weights). ``options``: the group read by
    ``typed_options``."""
    values = {f.name: plain(getattr(options, f.name)) for f in dataclasses.fields(options)}
    return _not_options(group, config) | values


def identity(group: str, config: Mapping[str, Any], options: Any) -> dict[str, Any]:
    """The group's name, what the builder does not take, and the options that count (no
    default, or a value other than the default). ``options``: the group read by
    ``typed_options``."""
    kept = {}
    for f in _fields(options):
        value = plain(getattr(options, f.name))
        if f.default is dataclasses.MISSING or value != plain(f.default):
            kept[f.name] = value
    return _not_options(group, config) | kept


def exempt_keys(options: Any) -> set[str]:
    """Options that never count (``identity: False``)."""
    return {f.name for f in dataclasses.fields(options) if not f.metadata.get("identity", True)}
