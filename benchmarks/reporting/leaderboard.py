"""Leaderboards regenerated from the MLflow store.

``python -m benchmarks.leaderboard`` writes, per setting (dataset, tasks, model, protocol):
``results/<setting>.md`` (one table per target sparsity, laid out like the paper's tables),
``results/<setting>.csv`` (every aggregated row and metric) and ``results/<setting>_delta_m.png``
(delta-m against sparsity per method), plus ``results/leaderboard.md`` with all tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from benchmarks.cells.stored import is_stale, rekey_store
from benchmarks.reporting.delta_m import VARIANTS, delta_m, delta_m_metrics
from benchmarks.reporting.reference import reference_section
from benchmarks.reporting.sanity_table import is_ablated, render_sanity_table
from benchmarks.reporting.statistics import mean_ranks, t_interval, ties_with_best
from benchmarks.tracking.arguments import add_store_arguments
from benchmarks.tracking.collect import collect_failures, collect_runs
from benchmarks.tracking.schema import CELL_ID, SETTING_ID
from core.tasks import metric_specs
from methods.lifecycle import GROUP_OF_KIND, Architecture, DenseTraining
from methods.registry import get_method, list_methods

log = logging.getLogger(__name__)
GROUP_ORDER = list(GROUP_OF_KIND.values())  # dense, static, dynamic, pretrained, architecture
UNPRUNED_GROUPS = tuple(GROUP_OF_KIND[base.kind] for base in (DenseTraining, Architecture))
COMPLEXITY = ("model/params", "model/params_nonzero", "model/macs", "model/macs_nonzero")
BUDGET = ("budget/train_steps", "budget/train_flops")
STALE = "stale"  # column: runs of the row made by other code than today's


@dataclass(frozen=True)
class Comparison:
    """What delta-m is measured against (``baseline`` method) and over which metrics."""

    baseline: str = "dense"
    variant: str = "all_metrics"

    def __post_init__(self) -> None:
        if self.baseline not in BASELINES:
            raise ValueError(
                f"leaderboard baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}"
            )
        delta_m_metrics({}, self.variant)  # names the variants when unknown

    @property
    def suffix(self) -> str:
        """File-name suffix: none for the default, else what differs, so files never clash."""
        parts = [f"_vs_{self.baseline}"] if self.baseline != "dense" else []
        return "".join(parts + ([f"_{self.variant}"] if self.variant != "all_metrics" else []))

    @property
    def baseline_label(self) -> str:
        return "dense hard-sharing" if self.baseline == "dense" else self.baseline


BASELINES = ("dense", "single_task")


@dataclass
class Setting:
    """All finished runs of one comparison, and how to name its files."""

    slug: str
    title: str
    tasks: dict[str, str]
    runs: pd.DataFrame
    ablated: pd.DataFrame  # sanity-check ablations (their own table), with delta-m


def _with_delta_m(
    runs: pd.DataFrame, tasks: dict[str, str], comparison: Comparison
) -> pd.DataFrame:
    """delta-m of every run against the baseline method's run of the same seed; where that seed
    has no baseline run, against the mean of the baseline's runs (``baseline_fallback`` marks
    those runs and the leaderboard names them); NaN when the setting has no baseline run. Only
    the metrics that enter delta-m are needed; display-only ones may be absent from older runs."""
    metrics = delta_m_metrics(tasks, comparison.variant)
    for metric in metrics:  # a missing column is a clear error in delta_m, not a pandas one
        if metric not in runs:
            runs = runs.assign(**{metric: math.nan})
    reference = runs[runs["method"] == comparison.baseline]
    reference_mean = reference[metrics].mean() if not reference.empty else None
    by_seed = {int(r["seed"]): r for _, r in reference.iterrows()}
    values, fallback = [], []
    for _, run in runs.iterrows():
        base = by_seed.get(int(run["seed"]))
        fallback.append(base is None and reference_mean is not None)
        base = reference_mean if base is None else base
        if base is None:
            values.append(math.nan)
        else:
            row, baseline = run[metrics].to_dict(), base[metrics].to_dict()
            values.append(delta_m(row, baseline, tasks, comparison.variant))
    return runs.assign(delta_m=values, baseline_fallback=fallback)


def _selection_note(runs: pd.DataFrame) -> str:
    """How the rows' weights were chosen, when not simply the last step's."""
    chosen = set(runs["selection"].dropna()) if "selection" in runs else set()
    if chosen <= {"last"}:
        return ""
    return (
        f" - checkpoint selection: {', '.join(sorted(chosen))} (best_test_loss selects on the "
        "test set, as the DiSparse authors do)"
    )


def with_shared_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows for methods that share another method's cells (hard_sharing is dense), listed under
    their own name and group."""
    extra = []
    for name in list_methods():
        cls = get_method(name)
        if cls.same_cell_as:
            rows = frame[frame["method"] == cls.same_cell_as].copy()
            extra.append(rows.assign(method=name, group=GROUP_OF_KIND[cls.kind]))
    return pd.concat([frame, *extra], ignore_index=True) if extra else frame


def split_settings(frame: pd.DataFrame, comparison: Comparison | None = None) -> list[Setting]:
    comparison = comparison or Comparison()
    settings = []
    keys = ["dataset", "tasks", "model", "protocol", SETTING_ID]
    names_seen: dict[str, int] = {}
    for (dataset, tasks_json, model, protocol, setting), runs in frame.groupby(keys, sort=True):
        tasks = json.loads(tasks_json)
        readable = f"{dataset}_{'+'.join(tasks)}_{model}_{protocol}"
        names_seen[readable] = names_seen.get(readable, 0) + 1
        slug = readable if names_seen[readable] == 1 else f"{readable}_{setting[:6]}"
        title = (
            f"{dataset} ({', '.join(tasks)}), model {model}, protocol {protocol} "
            f"[setting {setting}]{_selection_note(runs)}"
        )
        runs = _with_delta_m(runs.copy(), tasks, comparison)
        ablated = is_ablated(runs)
        settings.append(Setting(slug, title, tasks, runs[~ablated], runs[ablated]))
    return settings


def aggregate(setting: Setting) -> pd.DataFrame:
    """Mean, std and 95% interval half-width over seeds per (group, method, target sparsity)."""
    value_columns = [
        c
        for c in [
            *metric_specs(setting.tasks),
            "sparsity/overall",
            "delta_m",
            *COMPLEXITY,
            *BUDGET,
        ]
        if c in setting.runs
    ]
    grouped = setting.runs.groupby(["group", "method", "sparsity"], sort=False)
    mean = grouped[value_columns].mean().add_suffix(":mean")
    std = grouped[value_columns].std(ddof=1).add_suffix(":std")
    ci = grouped[value_columns].agg(lambda v: t_interval(list(v))[1]).add_suffix(":ci95")
    seeds = grouped["seed"].nunique().rename("seeds")
    stale = (grouped[STALE].sum() if STALE in setting.runs else seeds * 0).rename(STALE)
    health = grouped.apply(health_note, include_groups=False).rename("health")
    table = pd.concat([seeds, mean, std, ci, health, stale], axis=1).reset_index()
    table["group_order"] = table["group"].map(
        lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER)
    )
    return table.sort_values(["sparsity", "group_order", "method"]).drop(columns="group_order")


def health_note(runs: pd.DataFrame) -> str:
    """What broke in a row's runs at the end of training: layers pruned away and tasks cut off
    from the input, each with the number of seeds it happened in; "" when healthy."""
    notes = []
    for tag, what in (
        ("health/collapsed", "layers pruned away"),
        ("health/disconnected", "cut off"),
        ("health/dead_outputs", "output channels no path reaches"),
    ):
        if tag not in runs:
            continue
        counts: dict[str, int] = {}
        for names in runs[tag].fillna(""):
            for name in filter(None, str(names).split(",")):
                counts[name] = counts.get(name, 0) + 1
        if counts:
            listed = ", ".join(f"{n} ({c}/{len(runs)} seeds)" for n, c in sorted(counts.items()))
            notes.append(f"{what}: {listed}")
    return "; ".join(notes)


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


def _arrow(higher_is_better: bool) -> str:
    return "↑" if higher_is_better else "↓"


def render_table(
    rows: pd.DataFrame,
    tasks: dict[str, str],
    delta_m_ties: set[str] | None = None,
    variant: str = "all_metrics",
) -> str:
    """Markdown table: a column per metric (with direction), achieved sparsity, delta-m.

    The best compressed row of each column is bold; in the delta-m column, compressed methods
    in ``delta_m_ties`` (not significantly different from the best) are marked ≈.
    """
    specs = metric_specs(tasks)
    columns = [k for k in delta_m_metrics(tasks, variant) if f"{k}:mean" in rows]
    header = ["group", "method", "sparsity %", "seeds", "params k (nonzero)", "MACs M (nonzero)"]
    header += ["train steps", "train FLOPs"]
    header += [f"{k.replace('/', ' ')} {_arrow(specs[k].higher_is_better)}" for k in columns]
    header.append("Δm % ↑")
    compressed = ~rows["group"].isin(UNPRUNED_GROUPS)
    best = {}
    for key, higher in [(k, specs[k].higher_is_better) for k in columns] + [("delta_m", True)]:
        values = rows.loc[compressed, f"{key}:mean"].dropna()
        if len(values) > 1:
            best[key] = values.max() if higher else values.min()
    body = []
    for _, row in rows.iterrows():
        marks = " †" if row.get("health", "") else ""
        marks += " §" if row.get(STALE, 0) else ""
        line = [
            row["group"],
            f"{row['method']}{marks}",
            f"{100 * row['sparsity/overall:mean']:.1f}",
            int(row["seeds"]),
            _size(row, "model/params", 1e3),
            _size(row, "model/macs", 1e6),
            *_budget(row),
        ]
        for key in [*columns, "delta_m"]:
            text = _format(row[f"{key}:mean"], row.get(f"{key}:ci95", math.nan), int(row["seeds"]))
            if compressed[row.name] and key in best and row[f"{key}:mean"] == best[key]:
                text = f"**{text}**"
            elif (
                key == "delta_m" and compressed[row.name] and row["method"] in (delta_m_ties or ())
            ):
                text = f"{text} ≈"
            line.append(text)
        body.append(line)
    return tabulate(body, headers=header, tablefmt="github", disable_numparse=True)


def caption(tasks: dict[str, str], comparison: Comparison) -> str:
    names = ", ".join(delta_m_metrics(tasks, comparison.variant))
    return (
        f"Δm ({comparison.variant}): {VARIANTS[comparison.variant]}, against the "
        f"{comparison.baseline_label} baseline; positive is better than the baseline. Each run is "
        "compared with the baseline run of its own seed (paired), then averaged over seeds, so a "
        "row's Δm cannot be recomputed from the table's mean baseline row (they differ by up to a "
        f"point or two). Metrics in Δm: {names}. Sparsity: measured zeros among prunable "
        "weights. Params and MACs (multiply-accumulates of conv/linear layers for one input at "
        "the benchmark resolution), in brackets counting nonzero weights only. Train steps and "
        "FLOPs: every optimiser step that produced the model (the source model's included for "
        "methods that start from one, every IMP/LTH round included) and their FLOPs (3 x "
        "forward, counting the weights each step's mask kept). Mean ± half-width of the 95% "
        "confidence interval over seeds (Student t; no interval with one seed). Bold: best "
        "compressed row; ≈ in Δm: not significantly different from the best (paired t-test over "
        "seeds, p >= 0.05, or fewer than two shared seeds). †: at the end of training some seed "
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


def _per_seed_delta_m(runs: pd.DataFrame, level: float) -> dict[str, dict[int, float]]:
    """{method: {seed: delta-m}} of the compressed runs at one target sparsity."""
    at_level = runs[(runs["sparsity"] == level) & ~runs["group"].isin(UNPRUNED_GROUPS)]
    return {
        str(method): dict(zip(group["seed"].astype(int), group["delta_m"], strict=True))
        for method, group in at_level.dropna(subset=["delta_m"]).groupby("method")
    }


def _delta_m_ties(runs: pd.DataFrame, level: float) -> set[str]:
    per_seed = _per_seed_delta_m(runs, level)
    return ties_with_best(per_seed)[1] if len(per_seed) > 1 else set()


def _rank_summary(runs: pd.DataFrame, levels: list[float]) -> list[str]:
    """Markdown lines: each compressed method's mean rank by delta-m over the sparsities."""
    comparisons = []
    for level in levels:
        per_seed = _per_seed_delta_m(runs, level)
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
    dense_rows = table[table["group"].isin(UNPRUNED_GROUPS)]
    levels = sorted(table.loc[~table["group"].isin(UNPRUNED_GROUPS), "sparsity"].unique())
    for level in levels or [None]:
        rows = (
            table
            if level is None
            else pd.concat(
                [
                    dense_rows,
                    table[(table["sparsity"] == level) & ~table["group"].isin(UNPRUNED_GROUPS)],
                ]
            )
        )
        if level is not None:
            parts += [f"### target sparsity {100 * level:g}%", ""]
        ties = _delta_m_ties(setting.runs, level) if level is not None else set()
        parts += [render_table(rows, setting.tasks, ties, comparison.variant), ""]
        flagged = rows[rows["health"] != ""]  # aggregate() writes a note for every row
        parts += [f"† {r['method']}: {r['health']}" for _, r in flagged.iterrows()]
        parts += [""] if len(flagged) else []
        stale = rows[rows[STALE] > 0]
        parts += [
            f"§ {r['method']}: {int(r[STALE])} of its runs computed by other code than today's "
            "(stale); `rerun=stale` recomputes them"
            for _, r in stale.iterrows()
        ]
        parts += [""] if len(stale) else []
    parts += [caption(setting.tasks, comparison), ""]
    parts += fallback_lines(setting.runs, comparison)
    parts += _rank_summary(setting.runs, levels)
    parts += render_sanity_table(setting.runs, setting.ablated)
    dataset = str(setting.runs["dataset"].iloc[0])
    parts += [reference_section(dataset, table)]
    return "\n".join(parts)


def failure_lines(failures: pd.DataFrame) -> list[str]:
    """Markdown lines naming the cells whose runs failed or were killed (never finished)."""
    if failures.empty:
        return []
    lines = ["", "### Cells that failed (no finished run, so absent from the tables above)", ""]
    for _, row in failures.sort_values(["method", "sparsity", "seed"]).iterrows():
        reason = str(row["reason"] or "no reason recorded").splitlines()[0][:300]
        lines.append(
            f"- {row['method']} sparsity={row['sparsity']} seed={row['seed']}: "
            f"{row['status']}: {reason}"
        )
    return [*lines, ""]


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


def write_leaderboard(
    uri: str, experiment: str, results_dir: str | Path, comparison: Comparison | None = None
) -> str:
    """Rebuild every table from the store, write files under ``results_dir``; returns the text.

    ``comparison``: the baseline delta-m is measured against and its variant; files of other
    than the default (dense, all_metrics) carry a suffix naming them (``Comparison.suffix``).
    """
    comparison = comparison or Comparison()
    suffix = comparison.suffix
    rekey_store(uri, experiment)
    frame = collect_runs(uri, experiment, lambda run: {STALE: is_stale(run)})
    finished = set(frame[CELL_ID]) if not frame.empty else set()
    failures = collect_failures(uri, experiment, finished)
    if frame.empty:
        empty = f"No finished runs in experiment {experiment!r} of {uri} yet."
        return "\n".join([empty, *failure_lines(failures)])
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for setting in split_settings(with_shared_cells(frame), comparison):
        table = aggregate(setting)
        text = render_setting(setting, table, comparison)
        setting_id = str(setting.runs[SETTING_ID].iloc[0])
        if not failures.empty:
            text += "\n".join(failure_lines(failures[failures[SETTING_ID] == setting_id]))
        name = f"{setting.slug}{suffix}"
        (out / f"{name}.md").write_text(f"# Leaderboard\n\n{text}")
        table.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
        plot_delta_m(setting, table, out / f"{name}_delta_m.png", comparison)
        sections.append(text)
    if not failures.empty:  # settings where nothing finished
        orphans = failures[~failures[SETTING_ID].isin(set(frame[SETTING_ID]))]
        sections += failure_lines(orphans)
    full = "\n".join(sections)
    (out / f"leaderboard{suffix}.md").write_text(
        f"# Leaderboard\n\nGenerated from {uri} (experiment {experiment}).\n\n{full}"
    )
    return full


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.leaderboard",
        description="Regenerate the leaderboard tables, CSVs and plots from the MLflow store.",
    )
    add_store_arguments(parser)
    parser.add_argument(
        "--results-dir",
        default="results",
        help="where tables and plots are written (default: %(default)s)",
    )
    parser.add_argument(
        "--baseline",
        default="dense",
        choices=BASELINES,
        help="delta-m reference: dense (hard sharing, default) or single_task; files of a "
        "non-default comparison are named with a suffix (_vs_single_task, _main_metric)",
    )
    parser.add_argument(
        "--delta-m",
        default="all_metrics",
        choices=list(VARIANTS),
        help="all_metrics (LibMTL's Δp, default) or main_metric (one metric per task, the "
        "Δ_MTL of Maninis et al. / Vandenhende et al.; with --baseline single_task as theirs)",
    )
    args = parser.parse_args(argv)
    comparison = Comparison(args.baseline, args.delta_m)
    try:
        print(write_leaderboard(args.tracking_uri, args.experiment, args.results_dir, comparison))
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nwritten under {args.results_dir}/")
    return 0
