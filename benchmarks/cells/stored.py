"""Cells read back from stored runs (their logged params): whether a run is stale, and the
re-keying of runs made before cell ids.

Runs made before cell ids (tagged with the hash of every option, ``config_hash``) get their
cell id and setting id as tags, so a store of finished runs keeps counting after the identity
changed. Their code fingerprint is unknown: they count as stale (reused with a warning;
``rerun=stale`` recomputes them).
"""

from __future__ import annotations

import logging
from typing import Any

from mlflow.entities import Run

from benchmarks.cells.cell import Cell
from benchmarks.cells.identity import GROUPS, stable_hash
from benchmarks.tracking.keys import param_value
from benchmarks.tracking.schema import CELL_ID, CODE_FINGERPRINT, LEGACY_CONFIG_HASH, SETTING_ID
from benchmarks.tracking.store import Tracker, open_existing

log = logging.getLogger(__name__)


def cell_from_params(params: dict[str, str]) -> Cell:
    """The cell whose ``flatten(as_dict())`` gave ``params``."""
    groups: dict[str, dict[str, Any]] = {g: {} for g in GROUPS}
    for key, text in params.items():
        group, _, rest = key.partition(".")
        if group not in groups or not rest:
            continue
        node = groups[group]
        *parents, leaf = rest.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = param_value(text)
    threads = param_value(params["threads"]) if "threads" in params else None
    return Cell(
        **groups,
        sparsity=float(params["sparsity"]),
        seed=int(param_value(params["seed"])),
        threads=threads,
    )


def cell_of(run: Run) -> Cell | None:
    """The cell a run computed, or None when no registered method, model or dataset reads its
    config any more."""
    try:
        cell = cell_from_params(run.data.params)
        _ = cell.key  # reads every group into its typed options
        return cell
    except (KeyError, ValueError, TypeError, LookupError):
        return None


def describe(run: Run) -> dict[str, object]:
    """The leaderboard's per-run columns, from the cell rebuilt out of the run's logged options:
    ``stale`` (computed by other code than today's, or by code no longer known) and
    ``options_id`` (hash of every option, seed and sparsity aside: runs of one method under other
    values, a default that changed between them, never share a row; runs from before cell ids
    logged only their configured options, so for them a changed default cannot be seen)."""
    cell = cell_of(run)
    if cell is None:
        return {"stale": True, "options_id": "unknown"}
    options = {k: v for k, v in cell.key.resolved.items() if k not in ("seed", "sparsity")}
    return {
        "stale": run.data.tags.get(CODE_FINGERPRINT) != cell.code_fingerprint,
        "options_id": stable_hash(options, 8),
    }


def legacy_tags(run: Run) -> dict[str, str] | None:
    """Cell id and setting id of a run from before cell ids; None for other runs, and for runs
    whose config no registered method, model or dataset reads any more (kept as they are)."""
    if LEGACY_CONFIG_HASH not in run.data.tags:
        return None
    cell = cell_of(run)
    if cell is None:
        log.warning("run %s: its config cannot be read any more; left as it is", run.info.run_id)
        return None
    return {CELL_ID: cell.cell_id, SETTING_ID: cell.setting_id}


def rekey_legacy_runs(tracker: Tracker) -> int:
    """Re-key every run of the store made before cell ids; returns how many."""
    count = tracker.rekey_legacy_runs(legacy_tags)
    if count:
        log.info(
            "re-keyed %d run(s) made before cell ids: they keep counting, as stale (their code "
            "is unknown; rerun=stale recomputes them)",
            count,
        )
    return count


def rekey_store(uri: str, experiment: str) -> int:
    """``rekey_legacy_runs`` on a store's experiment, if it exists (a reader creates nothing)."""
    tracker = open_existing(uri, experiment)
    return rekey_legacy_runs(tracker) if tracker is not None else 0
