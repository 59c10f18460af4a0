"""The plots of a setting: delta-m against sparsity, and the frontier of delta-m against the
measured latency."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.reporting.settings import UNPRUNED_GROUPS, Comparison, Setting

FRONTIER_X = "inference/latency_ratio_b1"
STRUCTURED_GROUP = "structured"


def plot_delta_m(setting: Setting, table: pd.DataFrame, path: Path, comparison: Comparison) -> None:
    """Delta-m against target sparsity, one line per compression method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    ax.axhline(0.0, color="black", linewidth=1, label=comparison.baseline_label)
    compressed = table[~table["group"].isin(UNPRUNED_GROUPS)]
    colors = plt.get_cmap("tab20").colors
    styles = {"static": "-", "dynamic": "--", "pretrained": ":"}
    for index, ((group, method), rows) in enumerate(compressed.groupby(["group", "method"])):
        rows = rows.sort_values("sparsity")
        ax.errorbar(
            100 * rows["sparsity"],
            rows["delta_m:mean"],
            yerr=rows["delta_m:ci95"],
            marker="o",
            capsize=3,
            color=colors[index % len(colors)],
            linestyle=styles.get(group, "-"),
            label=f"{method} ({group})",
        )
    ax.set_xlabel("target sparsity (%)")
    ax.set_ylabel(
        f"Δm ({comparison.variant}) vs {comparison.baseline} (%)  ↑ better\n"
        "(bars: 95% interval over seeds)"
    )
    ax.set_title(setting.slug, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def frontier_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with both a measured latency and a delta-m."""
    if f"{FRONTIER_X}:mean" not in table:
        return table.iloc[0:0]
    return table.dropna(subset=[f"{FRONTIER_X}:mean", "delta_m:mean"])


def plot_frontier(
    setting: Setting, table: pd.DataFrame, path: Path, comparison: Comparison
) -> None:
    """Delta-m against latency at batch 1 relative to dense, one point per method and sparsity
    with 95% intervals over seeds on both axes; channel-pruned rows as squares, masked rows as
    circles, architectures as triangles (rows without a latency are left out)."""
    rows = frontier_rows(table)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 5))
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    colors = plt.get_cmap("tab20").colors
    for index, ((group, method), points) in enumerate(rows.groupby(["group", "method"])):
        marker = {STRUCTURED_GROUP: "s", "architecture": "^", "dense": "*"}.get(group, "o")
        ax.errorbar(
            points[f"{FRONTIER_X}:mean"],
            points["delta_m:mean"],
            xerr=points.get(f"{FRONTIER_X}:ci95"),
            yerr=points.get("delta_m:ci95"),
            marker=marker,
            markersize=7 if marker != "*" else 12,
            linestyle="none",
            capsize=2,
            color=colors[index % len(colors)],
            label=f"{method} ({group})",
        )
        if group not in UNPRUNED_GROUPS:
            for _, point in points.iterrows():
                ax.annotate(
                    f"{100 * point['sparsity']:.0f}%",
                    (point[f"{FRONTIER_X}:mean"], point["delta_m:mean"]),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    ax.set_xlabel("latency at batch 1 relative to the dense network (measured; < 1 is faster)")
    ax.set_ylabel(f"Δm ({comparison.variant}) vs {comparison.baseline} (%)  ↑ better")
    ax.set_title(
        f"What compression buys: Δm against measured latency\n{setting.title.split(' [')[0]}",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(
        fontsize=7,
        title="■ channels removed, ● masks\n(point labels: target sparsity)",
        title_fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
