"""The delta-m plot of a setting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.reporting.settings import UNPRUNED_GROUPS, Comparison, Setting


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
