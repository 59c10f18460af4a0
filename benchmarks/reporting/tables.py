"""A setting rendered as markdown: one table per target sparsity with intervals, ties and marks,
the caption, mean ranks, the sanity table and the paper's reference rows."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from benchmarks.inference.measure import CONTROL_TOLERANCE
from benchmarks.reporting.agreement import agreement_section
from benchmarks.reporting.delta_m import VARIANTS, delta_m_metrics
from benchmarks.reporting.readout_table import render_readout_table
from benchmarks.reporting.reference import reference_section
from benchmarks.reporting.sanity_table import render_sanity_table
from benchmarks.reporting.settings import (
    STALE,
    TASK_CHANGE,
    UNPRUNED_KINDS,
    Comparison,
    Setting,
    latency_noisy,
    per_seed_delta_m,
    task_change,
)
from benchmarks.reporting.statistics import mean_ranks, ties_with_best
from core.tasks import metric_specs


def _format(mean: float, half_width: float, seeds: int) -> str:
    if math.isnan(mean):
        return "-"
    if seeds > 1 and not math.isnan(half_width):
        return f"{mean:.2f} ± {half_width:.2f}"
    return f"{mean:.2f}"


def _size(row: pd.Series, key: str, unit: float) -> str:
    """ "total (nonzero)" in ``unit``s, from the run's complexity metrics."""
    total, nonzero = row.get(f"{key}:mean", math.nan), row.get(f"{key}_nonzero:mean", math.nan)
    if math.isnan(total):
        return "-"
    return f"{total / unit:.1f} ({nonzero / unit:.1f})"


def _budget(row: pd.Series) -> list[str]:
    """Mean training steps and FLOPs of the row's runs (the source model's included)."""
    steps = row.get("budget/train_steps:mean", math.nan)
    flops = row.get("budget/train_flops:mean", math.nan)
    return [
        "-" if math.isnan(steps) else f"{steps:.0f}",
        "-" if math.isnan(flops) else f"{flops:.2e}",
    ]


def _inference(row: pd.Series) -> list[str]:
    """Latency against dense at batch 1 / 8, and the state dict's MB (sparse format when
    smaller): what the row's compression buys when the model runs."""
    b1, b8 = (row.get(f"inference/latency_ratio_b{b}:mean", math.nan) for b in (1, 8))
    plain = row.get("inference/state_dict_mb:mean", math.nan)
    sparse = row.get("inference/sparse_state_dict_mb:mean", math.nan)
    noisy = " ~" if latency_noisy(row) else ""
    latency = "-" if math.isnan(b1) else f"{b1:.2f} / {b8:.2f}{noisy}"
    if math.isnan(plain):
        return [latency, "-"]
    size = f"{plain:.2f}" if not sparse < 0.99 * plain else f"{plain:.2f} ({sparse:.2f})"
    return [latency, size]


def _arrow(higher_is_better: bool) -> str:
    return "↑" if higher_is_better else "↓"


def best_compressed(rows: pd.DataFrame, directions: list[tuple[str, bool]]) -> dict[str, float]:
    """For each (column, higher is better): the best mean among the compressed rows (the bold
    one), where there are at least two to compare."""
    compressed = rows[~rows["kind"].isin(UNPRUNED_KINDS)]
    best = {}
    for key, higher in directions:
        values = compressed[f"{key}:mean"].dropna()
        if len(values) > 1:
            best[key] = values.max() if higher else values.min()
    return best


def render_table(
    rows: pd.DataFrame,
    tasks: dict[str, str],
    delta_m_ties: set[str] | None = None,
    variant: str = "all_metrics",
) -> str:
    """Markdown table, quality first: delta-m, each task's change against the baseline (its part
    of delta-m), a column per metric (with direction), then sparsity, size, inference and budget.

    The best compressed row of each column is bold; in the delta-m column, compressed methods
    in ``delta_m_ties`` (not significantly different from the best) are marked ≈.
    """
    specs = metric_specs(tasks)
    columns = [k for k in delta_m_metrics(tasks, variant) if f"{k}:mean" in rows]
    changes = [task_change(t) for t in tasks if f"{task_change(t)}:mean" in rows]
    header = ["kind", "method", "sparsity %", "seeds", "Δm % ↑"]
    header += [f"{c.removeprefix(TASK_CHANGE)} Δ% ↑" for c in changes]
    header += [f"{k.replace('/', ' ')} {_arrow(specs[k].higher_is_better)}" for k in columns]
    header += ["params k (nonzero)", "MACs M (nonzero)", "latency × dense b1 / b8"]
    header += ["MB (sparse)", "train steps", "train FLOPs"]
    compressed = ~rows["kind"].isin(UNPRUNED_KINDS)
    directions = [("delta_m", True), *((c, True) for c in changes)]
    directions += [(k, specs[k].higher_is_better) for k in columns]
    best = best_compressed(rows, directions)
    body = []
    for _, row in rows.iterrows():
        marks = " †" if row.get("health", "") else ""
        marks += " §" if row.get(STALE, 0) else ""
        line = [
            row["kind"],
            f"{row['method']}{marks}",
            f"{100 * row['sparsity/overall:mean']:.1f}",
            int(row["seeds"]),
        ]
        for key, _ in directions:
            text = _format(row[f"{key}:mean"], row.get(f"{key}:ci95", math.nan), int(row["seeds"]))
            if compressed[row.name] and key in best and row[f"{key}:mean"] == best[key]:
                text = f"**{text}**"
            elif (
                key == "delta_m" and compressed[row.name] and row["method"] in (delta_m_ties or ())
            ):
                text = f"{text} ≈ (†)" if row.get("health", "") else f"{text} ≈"
            line.append(text)
        line += [
            _size(row, "model/params", 1e3),
            _size(row, "model/macs", 1e6),
            *_inference(row),
            *_budget(row),
        ]
        body.append(line)
    return tabulate(body, headers=header, tablefmt="github", disable_numparse=True)


def caption(tasks: dict[str, str], comparison: Comparison) -> str:
    names = ", ".join(delta_m_metrics(tasks, comparison.variant))
    return (
        f"Δm ({comparison.variant}): {VARIANTS[comparison.variant]}, against the "
        f"{comparison.baseline_label} baseline; positive is better than the baseline. "
        "<task> Δ%: that task's own relative change (its metrics in Δm), whose mean over "
        "tasks is Δm: a row can hide a task that lost much behind another that gained. Each run is "
        "compared with the baseline run of its own seed (paired), then averaged over seeds, so a "
        "row's Δm cannot be recomputed from the table's mean baseline row (they differ by up to a "
        f"point or two). Metrics in Δm: {names}. Sparsity: measured zeros among prunable "
        "weights (weights of removed channels count as zeros). Params and MACs "
        "(multiply-accumulates of conv/linear layers for one input at "
        "the benchmark resolution), in brackets counting nonzero weights only. Latency × dense: "
        "median time of a forward pass at batch 1 / 8 divided by the setting's dense network's, "
        "timed interleaved in the run's process (one CPU thread in the default sweep), median of "
        "the per-round ratios, rounds added until its 95% interval is within 10% of it or 25 "
        "rounds or 10 s (the CSV has the interval: latency_ratio_b1_low/_high): channel-pruned "
        "rows run smaller dense kernels, masked rows the dense kernels. An identical copy of "
        "the dense network is timed in the same rounds as a control; ~ marks a row where some "
        f"seed's control was off 1 by more than {CONTROL_TOLERANCE:.0%}: the machine was too "
        "busy to tell such differences, and the frontier plot leaves the row out. MB: the state "
        "dict as saved, in brackets with pruned weights stored "
        "as nonzeros plus a bitmap (when smaller); every inference figure is in the CSV, with "
        "the row's run ids. Train steps and "
        "FLOPs: every optimiser step that produced the model (the source model's included for "
        "methods that start from one, every IMP/LTH round included) and their FLOPs (3 x "
        "forward, counting the weights each step's mask kept). Mean ± half-width of the 95% "
        "confidence interval over seeds (Student t; no interval with one seed). Bold: best "
        "compressed row; ≈ in Δm: not significantly different from the best (paired t-tests over "
        "seeds against the best, Holm-corrected over all those comparisons: adjusted p >= 0.05, "
        "or fewer than two shared seeds); ≈ (†): tied only as far as a broken seed's spread "
        "allows, read its † note. †: at the end of training some seed "
        "had a prunable layer with no weight left, a task or an output channel (a class, a normal "
        "component) with no path of weights from the input (named below the table); such rows "
        "are reported, not dropped."
    )


def fallback_lines(runs: pd.DataFrame, comparison: Comparison) -> list[str]:
    """Markdown lines naming the runs whose own seed had no baseline run."""
    if "baseline_fallback" not in runs or not runs["baseline_fallback"].any():
        return []
    lines = [
        f"‡ No {comparison.baseline} run of the same seed, so Δm is measured against the mean of "
        f"the {comparison.baseline} runs of other seeds for:"
    ]
    flagged = runs[runs["baseline_fallback"]].sort_values(["method", "sparsity", "seed"])
    for (method, sparsity), group in flagged.groupby(["method", "sparsity"], sort=False):
        seeds = ", ".join(str(int(seed)) for seed in group["seed"])
        lines.append(f"- {method} at sparsity {sparsity:g}: seed(s) {seeds}")
    return [*lines, ""]


def delta_m_ties(runs: pd.DataFrame, level: float | None) -> set[str]:
    """Compressed methods whose delta-m at ``level`` does not differ significantly from the
    best's (the best included; none without a level or with one method)."""
    per_seed = per_seed_delta_m(runs, level) if level is not None else {}
    return ties_with_best(per_seed)[1] if len(per_seed) > 1 else set()


def compressed_levels(table: pd.DataFrame) -> list[float]:
    """The target sparsities of the table's compressed rows, ascending."""
    return sorted(table.loc[~table["kind"].isin(UNPRUNED_KINDS), "sparsity"].unique())


def tables_by_sparsity(table: pd.DataFrame) -> list[tuple[float | None, pd.DataFrame]]:
    """(target sparsity, its rows) with the unpruned rows (dense, architectures) in each as
    references; one (None, every row) when nothing is compressed."""
    unpruned = table[table["kind"].isin(UNPRUNED_KINDS)]
    levels = compressed_levels(table)
    if not levels:
        return [(None, table)]
    compressed = table[~table["kind"].isin(UNPRUNED_KINDS)]
    return [(lv, pd.concat([unpruned, compressed[compressed["sparsity"] == lv]])) for lv in levels]


def _rank_summary(runs: pd.DataFrame, levels: list[float]) -> list[str]:
    """Markdown lines: each compressed method's mean rank by delta-m over the sparsities."""
    comparisons = []
    for level in levels:
        per_seed = per_seed_delta_m(runs, level)
        comparisons.append({m: sum(v.values()) / len(v) for m, v in per_seed.items()})
    comparisons = [c for c in comparisons if len(c) > 1]
    if not comparisons:
        return []
    ranks = sorted(mean_ranks(comparisons).items(), key=lambda item: item[1])
    body = [[method, f"{rank:.2f}"] for method, rank in ranks]
    sparsities = ", ".join(f"{100 * level:g}%" for level in levels)
    return [
        f"### Mean rank by Δm over target sparsities {sparsities} (1 = best)",
        "",
        tabulate(body, headers=["method", "mean rank"], tablefmt="github"),
        "",
    ]


def render_setting(
    setting: Setting, table: pd.DataFrame, comparison: Comparison | None = None
) -> str:
    comparison = comparison or Comparison()
    parts = [f"## {setting.title}", ""]
    levels = compressed_levels(table)
    for level, rows in tables_by_sparsity(table):
        if level is not None:
            parts += [f"### target sparsity {100 * level:g}%", ""]
        ties = delta_m_ties(setting.runs, level)
        parts += [render_table(rows, setting.tasks, ties, comparison.variant), ""]
        flagged = rows[rows["health"] != ""]  # aggregate() writes a note for every row
        parts += [f"† {r['method']}: {r['health']}" for _, r in flagged.iterrows()]
        parts += [""] if len(flagged) else []
    parts += [caption(setting.tasks, comparison), ""]
    parts += missing_baseline_lines(setting, comparison)
    parts += stale_lines(table)
    parts += fallback_lines(setting.runs, comparison)
    parts += _rank_summary(setting.runs, levels)
    parts += render_sanity_table(setting.runs, setting.ablated)
    parts += render_readout_table(setting, comparison)
    dataset, protocol = (str(setting.runs[k].iloc[0]) for k in ("dataset", "protocol"))
    if protocol == f"paper_{dataset}":  # published numbers compare only with their protocol
        parts += [reference_section(dataset, table)]
    parts += agreement_section(dataset, list(setting.tasks), setting.runs)
    return "\n".join(parts)


def missing_baseline_lines(setting: Setting, comparison: Comparison) -> list[str]:
    """Why Δm is "-": the setting has no run of the baseline method, and how to make one."""
    if (setting.runs["method"] == comparison.baseline).any():
        return []
    return [
        f'Δm is "-": no {comparison.baseline} run for this setting. Run it with the same '
        f"dataset, model and protocol options as these runs (their `config.yaml`), e.g. "
        f"`python -m benchmarks.run method={comparison.baseline} <the same overrides>`; "
        "the Δm column fills in at the next leaderboard.",
        "",
    ]


SETTING_FAILURES = "Cells that failed (no finished run, so absent from the tables above)"
# The index's closing block: failed cells of settings that have no table (nothing finished).
TABLELESS_FAILURES = "Cells that failed in settings with no finished run"


def failure_lines(failures: pd.DataFrame, title: str = SETTING_FAILURES) -> list[str]:
    """Markdown lines naming the cells whose runs failed or were killed (never finished)."""
    if failures.empty:
        return []
    lines = ["", f"### {title}", ""]
    for _, row in failures.sort_values(["method", "sparsity", "seed"]).iterrows():
        reason = str(row["reason"] or "no reason recorded").splitlines()[0][:300]
        lines.append(
            f"- {row['method']} sparsity={row['sparsity']} seed={row['seed']}: "
            f"{row['status']}: {reason}"
        )
    return [*lines, ""]


def stale_lines(table: pd.DataFrame) -> list[str]:
    """One note for the rows marked §: how many of the setting's runs other code computed."""
    stale = table[table[STALE] > 0]
    if stale.empty:
        return []
    rows = ", ".join(
        f"{r['method']}" + ("" if r["kind"] in UNPRUNED_KINDS else f" {100 * r['sparsity']:g}%")
        for _, r in stale.iterrows()
    )
    return [
        f"§ rows holding runs computed by other code than today's (stale): {rows}. "
        "`python -m benchmarks.run rerun=stale` recomputes them.",
        "",
    ]
