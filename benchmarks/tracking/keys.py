"""How the store recognises a cell's runs (``CellKey``) and which finished runs a sweep takes as
done (``Reuse``, the ``rerun`` option)."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow.entities import Run

from benchmarks.tracking.schema import CODE_FINGERPRINT

RERUN_MODES = ("none", "stale", "all")


@dataclass(frozen=True)
class CellKey:
    """How the store recognises a cell's runs: its id, its resolved options as flat strings (a
    run logged under other values for the same id, after a default changed, is another cell),
    and the fingerprint of the code that computes it (a run made by other code is stale)."""

    cell_id: str
    resolved: Mapping[str, str]
    fingerprint: str

    def matches(self, run: Run) -> bool:
        """Same options wherever both the run's params and this key name one (compared as
        values: a config's ``0`` and a dataclass's ``0.0`` are one value)."""
        params = run.data.params
        return all(
            param_value(params[k]) == param_value(v)
            for k, v in self.resolved.items()
            if k in params
        )

    def is_stale(self, run: Run) -> bool:
        return run.data.tags.get(CODE_FINGERPRINT) != self.fingerprint


@dataclass(frozen=True)
class Reuse:
    """Which finished runs a sweep takes as done: ``none`` any (stale ones with a warning),
    ``stale`` only those made by today's code, ``all`` only those started at or after
    ``since_ms`` by today's code (this sweep's own, or a concurrent one's)."""

    rerun: str = "none"
    since_ms: int = 0

    def __post_init__(self) -> None:
        if self.rerun not in RERUN_MODES:
            raise ValueError(f"rerun={self.rerun!r}: choose one of {', '.join(RERUN_MODES)}")

    def accepts(self, run: Run, key: CellKey) -> bool:
        if self.rerun == "none":
            return True
        fresh = not key.is_stale(run)
        return fresh and (self.rerun == "stale" or run.info.start_time >= self.since_ms)


def param_value(text: str) -> Any:
    """A logged param's value before ``str()``: numbers, None, booleans, lists; else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
