"""The README's headline: the committed default sweep's Δm per method and sparsity, read from its
CSV, so every figure the README shows is the committed results' (``config_docs`` renders it and
its ``--check`` fails when the two differ)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from benchmarks.reporting.settings import UNPRUNED_KINDS

DEFAULT_TABLE = "synthetic_seg+normal_small_cnn_cpu_default.csv"


def _cell(mean: float, half: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:+.2f} ± {half:.2f}" if math.isfinite(half) else f"{mean:+.2f}"


def headline_markdown(results: Path) -> str:
    """A table: each compressed method's Δm (mean ± 95% interval over seeds) at each target
    sparsity, sorted by Δm at the highest one; the unpruned rows' Δm below it."""
    path = results / DEFAULT_TABLE
    if not path.is_file():
        return f"(no committed default sweep: {path} is missing; run `python -m benchmarks.run`)"
    table = pd.read_csv(path)
    compressed = table[~table["kind"].isin(UNPRUNED_KINDS)]
    levels = sorted(compressed["sparsity"].unique())
    wide = compressed.pivot_table(
        index=["kind", "method"], columns="sparsity", values=["delta_m:mean", "delta_m:ci95"]
    )
    wide = wide.sort_values(("delta_m:mean", levels[-1]), ascending=False)
    header = "| method | kind | " + " | ".join(f"Δm % at {100 * lv:g}%" for lv in levels) + " |"
    lines = [header, "|---|---|" + "---|" * len(levels)]
    for (kind, method), row in wide.iterrows():
        cells = [_cell(row[("delta_m:mean", lv)], row[("delta_m:ci95", lv)]) for lv in levels]
        lines.append(f"| `{method}` | {kind} | " + " | ".join(cells) + " |")
    unpruned = table[table["kind"].isin(UNPRUNED_KINDS)]
    references = ", ".join(
        f"`{r['method']}` {_cell(r['delta_m:mean'], r['delta_m:ci95'])}"
        for _, r in unpruned.sort_values("delta_m:mean", ascending=False).iterrows()
    )
    seeds = int(table["seeds"].max())
    lines += ["", f"Unpruned rows (Δm %, {seeds} seeds): {references}."]
    return "\n".join(lines)
