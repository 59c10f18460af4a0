"""A setting's critical-difference diagram: the compressed methods' average ranks by Δm over
every (target sparsity, seed) block, a Friedman test across them, and Nemenyi's post-hoc test
(scikit-posthocs), whose non-significant pairs the diagram joins with a bar. Ranks over blocks
pool the sparsities, so the diagram answers "which methods are better across the sweep", where
the tables answer it per sparsity."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import scikit_posthocs as posthocs
from scipy import stats

from benchmarks.reporting.settings import UNPRUNED_KINDS


@dataclass(frozen=True)
class RankTest:
    ranks: pd.Series  # method -> average rank (1 = best)
    p_values: pd.DataFrame  # Nemenyi's pairwise p-values
    friedman_p: float
    blocks: int  # (sparsity, seed) blocks every method has


def blocks_of(runs: pd.DataFrame) -> pd.DataFrame:
    """Δm of each compressed method (columns) per (sparsity, seed) block (rows), keeping only the
    blocks every method has and the methods present in most blocks."""
    compressed = runs[~runs["kind"].isin(UNPRUNED_KINDS)].dropna(subset=["delta_m"])
    wide = compressed.pivot_table(index=["sparsity", "seed"], columns="method", values="delta_m")
    if wide.empty:
        return wide
    present = wide.notna().sum()
    wide = wide.loc[:, present >= present.max()]  # a method missing blocks would drop them all
    return wide.dropna()


def rank_test(runs: pd.DataFrame) -> RankTest | None:
    """The ranks and tests of a setting's runs; None with fewer than three methods or blocks."""
    wide = blocks_of(runs)
    if wide.shape[0] < 3 or wide.shape[1] < 3:
        return None
    ranks = wide.rank(axis=1, ascending=False).mean()
    friedman = stats.friedmanchisquare(*(wide[c] for c in wide.columns)).pvalue
    p_values = posthocs.posthoc_nemenyi_friedman(wide.to_numpy())
    p_values.index = p_values.columns = wide.columns
    return RankTest(ranks.sort_values(), p_values, float(friedman), wide.shape[0])


@dataclass(frozen=True)
class Diagram:
    """A setting's rank test and its drawing (PNG bytes: written as a file and inlined in the
    page from one rendering)."""

    test: RankTest
    png: bytes


def critical_difference(runs: pd.DataFrame, title: str) -> Diagram | None:
    """The setting's diagram, or None where ``rank_test`` has too few methods or blocks."""
    test = rank_test(runs)
    if test is None:
        return None
    png = io.BytesIO()
    plot_critical_difference(test, title, png)
    return Diagram(test, png.getvalue())


def plot_critical_difference(test: RankTest, title: str, path: Path | BinaryIO) -> None:
    """The diagram, titled with the setting, the blocks and the Friedman p-value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.22 * len(test.ranks)))
    posthocs.critical_difference_diagram(test.ranks, test.p_values, ax=ax)
    ax.set_title(
        f"Mean rank by Δm (1 = best) over {test.blocks} (sparsity, seed) blocks; joined: not "
        f"different (Nemenyi, α 0.05); Friedman p = {test.friedman_p:.2g}\n{title}",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
