"""The plots of a setting: delta-m against sparsity, and the frontier of delta-m against the
measured latency."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from benchmarks.reporting.settings import (
    KIND_ORDER,
    UNPRUNED_KINDS,
    Comparison,
    Setting,
    latency_noisy,
)
from methods.lifecycle import MethodKind

FRONTIER_X = "inference/latency_ratio_b1"
# How the frontier draws each family of methods: a marker per kind, a colour per method within it
MARKERS = {
    MethodKind.DENSE: "*",
    MethodKind.STATIC: "o",
    MethodKind.DYNAMIC: "D",
    MethodKind.PRETRAINED: "v",
    MethodKind.STRUCTURED: "s",
    MethodKind.ARCHITECTURE: "^",
}
SPARSITY_SIZES = (5.0, 8.0, 11.0, 14.0)  # marker sizes of a setting's sparsities, low to high


def colour_index(rows: pd.DataFrame) -> dict[str, int]:
    """Each method's colour index, distinct within its kind (a marker tells kinds apart): the
    PNG frontier and the page's SVG plots colour a method alike."""
    return {
        method: index
        for _, family in rows.groupby("kind", sort=False)
        for index, method in enumerate(sorted(family["method"].unique()))
    }


def delta_m_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Compressed rows with a delta-m: what the delta-m plot draws (none: no plot)."""
    return table[~table["kind"].isin(UNPRUNED_KINDS)].dropna(subset=["delta_m:mean"])


def _y_range(rows: pd.DataFrame, references: pd.DataFrame) -> tuple[float, float]:
    """An axis range that every mean fits in and that no single wide interval stretches:
    the means, their intervals up to the 90th percentile of interval widths, the references."""
    means = pd.concat([rows["delta_m:mean"], references["delta_m:mean"], pd.Series([0.0])])
    widths = rows["delta_m:ci95"].fillna(0.0)
    cap = float(widths.quantile(0.9)) if len(widths) else 0.0
    low, high = float(means.min()) - cap, float(means.max()) + cap
    pad = 0.05 * (high - low or 1.0)
    return low - pad, high + pad


def plot_delta_m(setting: Setting, table: pd.DataFrame, path: Path, comparison: Comparison) -> None:
    """Delta-m against target sparsity: one panel per method kind (static, dynamic,
    pretrained, structured), one line per method with 95% intervals over seeds; dense (0) and
    dense_same_steps as reference bands, the architectures as dotted lines. Intervals cut by the
    axis are named in the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = delta_m_rows(table)
    kinds = [k for k in KIND_ORDER if k in set(rows["kind"])]
    references = table[table["kind"].isin(UNPRUNED_KINDS)].dropna(subset=["delta_m:mean"])
    low, high = _y_range(rows, references)
    columns = min(2, len(kinds))
    lines = math.ceil(len(kinds) / columns)
    fig, axes = plt.subplots(
        lines, columns, figsize=(6.0 * columns, 4.2 * lines), sharey=True, squeeze=False
    )
    for ax in axes.flat[len(kinds) :]:
        ax.set_visible(False)
    clipped = []
    colors = plt.get_cmap("tab10").colors
    for ax, kind in zip(axes.flat, kinds, strict=False):
        _draw_references(ax, references, comparison)
        for index, (method, points) in enumerate(rows[rows["kind"] == kind].groupby("method")):
            points = points.sort_values("sparsity")
            mean, ci = points["delta_m:mean"], points["delta_m:ci95"].fillna(0.0)
            ax.errorbar(
                100 * points["sparsity"],
                mean,
                yerr=ci,
                marker="o",
                capsize=3,
                color=colors[index % len(colors)],
                label=method,
            )
            for (_, point), m, c in zip(points.iterrows(), mean, ci, strict=True):
                if m - c < low or m + c > high:
                    clipped.append(f"{method} {100 * point['sparsity']:.0f}% (±{c:.1f})")
        ax.set_ylim(low, high)
        ax.set_title(f"{kind} methods", fontsize=10)
        ax.set_xlabel("target sparsity (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[:, 0]:
        ax.set_ylabel(
            f"Δm ({comparison.variant}) vs {comparison.baseline} (%)  ↑ better\n"
            "(bars: 95% interval over seeds)"
        )
    title = f"Δm against sparsity: {setting.title.split(' [')[0]}"
    note = f"intervals cut by the axis: {', '.join(clipped)}" if clipped else ""
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _draw_references(ax, references: pd.DataFrame, comparison: Comparison) -> None:
    """Dense and dense_same_steps as bands (mean ± 95% interval), architectures as lines."""
    ax.axhline(0.0, color="black", linewidth=1)
    for _, row in references.iterrows():
        mean, ci = row["delta_m:mean"], row.get("delta_m:ci95", 0.0)
        ci = 0.0 if pd.isna(ci) else ci
        if row["kind"] == MethodKind.DENSE and row["method"] != comparison.baseline:
            ax.axhspan(mean - ci, mean + ci, color="grey", alpha=0.25, label=row["method"])
        elif row["kind"] == MethodKind.ARCHITECTURE and row["method"] != "hard_sharing":
            ax.axhline(mean, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                row["method"],
                (0.99, mean),
                xycoords=("axes fraction", "data"),
                fontsize=6,
                ha="right",
                va="bottom",
                color="dimgrey",
            )


def frontier_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with both a measured latency and a delta-m, leaving out those whose latency pass
    was noisy (``tables.latency_noisy``); none unless some compressed row is left (a dense-only
    setting has no frontier)."""
    if f"{FRONTIER_X}:mean" not in table:
        return table.iloc[0:0]
    rows = table.dropna(subset=[f"{FRONTIER_X}:mean", "delta_m:mean"])
    rows = rows[~rows.apply(latency_noisy, axis=1)] if len(rows) else rows
    return rows if (~rows["kind"].isin(UNPRUNED_KINDS)).any() else rows.iloc[0:0]


def plot_frontier(
    setting: Setting, table: pd.DataFrame, path: Path, comparison: Comparison
) -> None:
    """Delta-m against latency at batch 1 relative to dense, one point per method and sparsity
    with 95% intervals over seeds on both axes, a method's points joined from low to high
    sparsity. Each kind has its marker (channels removed: squares; static: circles; dynamic:
    diamonds; pretrained: triangles down; architectures: triangles up), each method of a kind
    its colour, and the marker's size grows with the sparsity, so no label is printed over
    another (rows without a latency are left out)."""
    rows = frontier_rows(table)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.5, 5.5))
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    colors = plt.get_cmap("tab10").colors
    levels = sorted(set(rows.loc[~rows["kind"].isin(UNPRUNED_KINDS), "sparsity"]))
    colour = colour_index(rows)
    for kind, family in rows.groupby("kind", sort=False):
        marker = MARKERS.get(MethodKind(kind), "o")
        for method, points in family.groupby("method"):
            points = points.sort_values("sparsity")
            color = colors[colour[method] % len(colors)]
            ax.plot(
                points[f"{FRONTIER_X}:mean"],
                points["delta_m:mean"],
                color=color,
                linewidth=0.8,
                alpha=0.5,
            )
            for _, point in points.iterrows():
                size = _marker_size(point["sparsity"], levels, marker)
                ax.errorbar(
                    point[f"{FRONTIER_X}:mean"],
                    point["delta_m:mean"],
                    xerr=point.get(f"{FRONTIER_X}:ci95"),
                    yerr=point.get("delta_m:ci95"),
                    marker=marker,
                    markersize=size,
                    linestyle="none",
                    capsize=2,
                    color=color,
                    markeredgecolor="black",
                    markeredgewidth=0.4,
                )
            ax.plot(
                [], [], marker=marker, color=color, linestyle="none", label=f"{method} ({kind})"
            )
    ax.set_xlabel("latency at batch 1 relative to the dense network (measured; < 1 is faster)")
    ax.set_ylabel(f"Δm ({comparison.variant}) vs {comparison.baseline} (%)  ↑ better")
    ax.set_title(
        f"What compression buys: Δm against measured latency\n{setting.title.split(' [')[0]}",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    sizes = ", ".join(f"{100 * s:g}%" for s in levels)
    ax.legend(
        fontsize=7,
        title=f"marker: family; size: sparsity ({sizes})",
        title_fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        ncol=2 if rows["method"].nunique() > 16 else 1,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _marker_size(sparsity: float, levels: list[float], marker: str) -> float:
    """Bigger for higher sparsity (unpruned rows: the middle size); stars drawn larger."""
    index = levels.index(sparsity) if sparsity in levels else len(levels) // 2
    size = SPARSITY_SIZES[min(index, len(SPARSITY_SIZES) - 1)]
    return size * 1.5 if marker == "*" else size
