"""Typed options from a config mapping; unknown or mistyped keys fail naming the key.

Shared by dataset builders and methods (the lowest layer holds it so both can import it).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class OptionError(ValueError):
    """A config value is unknown or has the wrong type; the message says which and what to do."""


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(value, non_none[0], where)
    if origin in (tuple, list):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise OptionError(f"{where}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        return origin(_coerce(v, item_type, where) for v in value)
    if origin is dict or annotation is Any:
        return dict(value) if origin is dict else value
    if annotation is bool:
        if not isinstance(value, bool):
            raise OptionError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation is str and isinstance(value, str):
        return value
    if annotation in (int, float, str):
        raise OptionError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def options_from_mapping(cls: type[T], mapping: Mapping[str, Any], where: str) -> T:
    """Build dataclass ``cls`` from ``mapping``; ``where`` prefixes errors (``method=snip``)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise OptionError(
            f"{where}: unknown option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(sorted(fields))}"
        )
    missing = sorted(
        name
        for name, f in fields.items()
        if name not in mapping
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise OptionError(f"{where}: missing option(s) {', '.join(missing)}; set them in its file")
    values = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in mapping.items()}
    return cls(**values)


def describe_options(cls: type) -> list[tuple[str, str, str]]:
    """(name, default, help) for each field; help comes from ``field(metadata={'help': ...})``."""
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else "(required)"
        rows.append((f.name, repr(default), f.metadata.get("help", "")))
    return rows


def check_choice(option: str, value: object, choices: Sequence[str]) -> None:
    """``value`` of ``option`` must be one of ``choices``; the error lists them."""
    if value not in choices:
        raise OptionError(f"{option} must be one of {', '.join(choices)}, got {value!r}")
