"""``python -m benchmarks.compare_runs STORE_A STORE_B``: are two stores' results the same?

Matches finished runs by (method, protocol, sanity ablation, target sparsity, seed) and compares
every test metric and achieved sparsity exactly (NaN equals NaN). Used to show that a refactor
left a sweep's numbers unchanged, or that two machines agree; config hashes may differ (options
added with defaults).
"""

from __future__ import annotations

import argparse
import math

import pandas as pd

from benchmarks.tracking.arguments import DEFAULT_EXPERIMENT
from benchmarks.tracking.collect import collect_runs

KEYS = ["method", "protocol", "sanity", "sparsity", "seed"]  # sanity ablations and protocols apart


def _same(a: float, b: float) -> bool:
    return a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )


def _result_columns(frame: pd.DataFrame) -> list[str]:
    """Test metrics (``<task>/<metric>``), achieved sparsities (``sparsity/...``) and training
    budgets; not timings and inference measurements, which differ from run to run."""
    other = ("model/", "health/", "selection/", "time/", "inference/")
    return [c for c in frame.columns if "/" in c and not c.startswith(other)]


def compare(a: pd.DataFrame, b: pd.DataFrame) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """(identical keys, differing (key, {metric: (a, b)}), keys only in one store)."""
    metrics = _result_columns(a)
    merged = a.merge(b, on=KEYS, suffixes=("_a", "_b"))
    identical, differing = [], []
    for _, row in merged.iterrows():
        key = tuple(row[k] for k in KEYS)
        diffs = {
            m: (row[f"{m}_a"], row[f"{m}_b"])
            for m in metrics
            if f"{m}_b" in row and not _same(row[f"{m}_a"], row[f"{m}_b"])
        }
        (differing.append((key, diffs)) if diffs else identical.append(key))
    keys_a = set(map(tuple, a[KEYS].values.tolist()))
    keys_b = set(map(tuple, b[KEYS].values.tolist()))
    return identical, differing, sorted(keys_a ^ keys_b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_runs", description=__doc__)
    parser.add_argument("store_a", help="MLflow tracking URI, e.g. sqlite:///old.db")
    parser.add_argument("store_b", help="MLflow tracking URI")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
    args = parser.parse_args(argv)
    a = collect_runs(args.store_a, args.experiment)
    b = collect_runs(args.store_b, args.experiment)
    identical, differing, unmatched = compare(a, b)
    total = len(identical) + len(differing)
    print(f"identical in every test metric and sparsity: {len(identical)}/{total}")
    for key, diffs in differing:
        shown = ", ".join(f"{m} {x:.6g} -> {y:.6g}" for m, (x, y) in list(diffs.items())[:3])
        print(f"  differs: {key}: {shown}")
    if unmatched:
        print(f"in one store only: {unmatched}")
    return 0 if not differing else 1
