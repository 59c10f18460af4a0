"""A leaderboard's settings (one per dataset, tasks, model and protocol): their runs with
delta-m against the baseline, aggregated over seeds per method and sparsity."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pandas as pd

from benchmarks.reporting.delta_m import delta_m_metrics, task_changes
from benchmarks.reporting.sanity_table import is_ablated
from benchmarks.reporting.statistics import t_interval
from benchmarks.tracking.schema import CONSTANT, INFERENCE, KERNEL_TAG, LOSS_SPIKE, SETTING_ID
from core.tasks import TASK_KINDS, metric_specs
from methods.lifecycle import Architecture, DenseTraining, MethodKind
from methods.networks.base import SHARED
from methods.registry import get_method, list_methods

KIND_ORDER = [k.value for k in MethodKind]  # dense, static, dynamic, pretrained, ...
UNPRUNED_KINDS = tuple(base.kind.value for base in (DenseTraining, Architecture))
COMPLEXITY = ("model/params", "model/params_nonzero", "model/macs", "model/macs_nonzero")
BUDGET = ("budget/train_steps", "budget/train_flops")
# measured seconds of the run itself, and of measuring its inference cost
TIMES = ("time/train_s", "time/prune_s", "time/cell_s", "time/inference_s")
RUN_IDS = "run_ids"  # column: the row's MLflow runs, so every number leads to its model
LOSS_SPIKE_FACTOR = 10.0  # a train loss above this times its first value is flagged (not failed)
OWNER_SPARSITY = "sparsity/owner/"  # column prefix: achieved sparsity of the weights a task owns
STARVED_SPARSITY = 0.99  # a task whose own weights are pruned beyond this is flagged as starved
STALE = "stale"  # column: runs of the row made by other code than today's
OPTIONS = "options_id"  # column: hash of every option a run was made with (seed, sparsity aside)
# the main metric of each task kind, by name (names are unique across kinds)
MAIN_METRICS = {m.name: m for k in TASK_KINDS.values() for m in k.accumulator.METRICS if m.main}
TASK_CHANGE = "delta_m/"  # column prefix: a task's relative change in percent (its part of Δm)


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


def with_delta_m(runs: pd.DataFrame, tasks: dict[str, str], comparison: Comparison) -> pd.DataFrame:
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
    changes: dict[str, list[float]] = {task_change(t): [] for t in tasks}
    for _, run in runs.iterrows():
        base = by_seed.get(int(run["seed"]))
        fallback.append(base is None and reference_mean is not None)
        base = reference_mean if base is None else base
        per_task: dict[str, float] = {}
        if base is not None:
            row, baseline = run[metrics].to_dict(), base[metrics].to_dict()
            per_task = task_changes(row, baseline, tasks, comparison.variant)
        values.append(sum(per_task.values()) / len(per_task) if per_task else math.nan)
        for task in tasks:
            changes[task_change(task)].append(per_task.get(task, math.nan))
    return runs.assign(delta_m=values, baseline_fallback=fallback, **changes)


def per_seed_delta_m(runs: pd.DataFrame, level: float) -> dict[str, dict[int, float]]:
    """{method: {seed: delta-m}} of the compressed runs at target sparsity ``level``."""
    at_level = (runs["sparsity"] - level).abs() < 1e-9
    rows = runs[at_level & ~runs["kind"].isin(UNPRUNED_KINDS)].dropna(subset=["delta_m"])
    return {
        str(method): dict(zip(group["seed"].astype(int), group["delta_m"], strict=True))
        for method, group in rows.groupby("method")
    }


def task_change(task: str) -> str:
    """The column of a task's relative change against the baseline (its part of delta-m)."""
    return f"{TASK_CHANGE}{task}"


def _selection_note(runs: pd.DataFrame) -> str:
    """How the rows' weights were chosen, when not simply the last step's."""
    chosen = set(runs["selection"].dropna()) if "selection" in runs else set()
    if chosen <= {"last"}:
        return ""
    return (
        f" - checkpoint selection: {', '.join(sorted(chosen))} (best_test_loss selects on the "
        "test set, as the DiSparse authors do)"
    )


def separate_option_sets(frame: pd.DataFrame) -> pd.DataFrame:
    """A method whose runs in one setting were made under different option values (a default
    changed between them) gets one row per set, named ``method {options <id>}``: rows never mix
    runs made under different settings."""
    if frame.empty or OPTIONS not in frame:
        return frame
    keys = [SETTING_ID, "method", "sanity"]  # a sanity ablation is its own table already
    mixed = frame.groupby(keys)[OPTIONS].transform("nunique") > 1
    frame = frame.copy()
    frame.loc[mixed, "method"] = [
        f"{m} {{options {o}}}"
        for m, o in zip(frame.loc[mixed, "method"], frame.loc[mixed, OPTIONS], strict=True)
    ]
    return frame


def with_shared_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows for methods that share another method's cells (hard_sharing is dense), listed under
    their own name and kind."""
    extra = []
    for name in list_methods():
        cls = get_method(name)
        if cls.same_cell_as:
            rows = frame[frame["method"] == cls.same_cell_as].copy()
            extra.append(rows.assign(method=name, kind=cls.kind.value))
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
        runs = with_delta_m(runs.copy(), tasks, comparison)
        ablated = is_ablated(runs)
        settings.append(Setting(slug, title, tasks, runs[~ablated], runs[ablated]))
    return settings


def aggregate(setting: Setting) -> pd.DataFrame:
    """Mean, std and 95% interval half-width over seeds per (kind, method, target sparsity)."""
    value_columns = [
        c
        for c in [
            *metric_specs(setting.tasks),
            "sparsity/overall",
            "delta_m",
            *(task_change(t) for t in setting.tasks),
            *COMPLEXITY,
            *BUDGET,
            *TIMES,
            *sorted(c for c in setting.runs if str(c).startswith(INFERENCE)),
        ]
        if c in setting.runs and pd.api.types.is_numeric_dtype(setting.runs[c])
    ]
    grouped = setting.runs.groupby(["kind", "method", "sparsity"], sort=False)
    mean = grouped[value_columns].mean().add_suffix(":mean")
    std = grouped[value_columns].std(ddof=1).add_suffix(":std")
    ci = grouped[value_columns].agg(lambda v: t_interval(list(v))[1]).add_suffix(":ci95")
    seeds = grouped["seed"].nunique().rename("seeds")
    stale = (grouped[STALE].sum() if STALE in setting.runs else seeds * 0).rename(STALE)
    health = grouped.apply(health_note, include_groups=False).rename("health")
    run_ids = grouped["run_id"].agg(lambda ids: " ".join(sorted(ids))).rename(RUN_IDS)
    kernel = (
        grouped[KERNEL_TAG].agg(lambda v: ", ".join(sorted({str(k) for k in v if k})))
        if KERNEL_TAG in setting.runs
        else seeds.map(lambda _: "")
    ).rename(KERNEL_TAG)
    parts = [seeds, mean, std, ci, health, stale, kernel, run_ids]
    table = pd.concat(parts, axis=1).reset_index()
    table["kind_order"] = table["kind"].map(
        lambda g: KIND_ORDER.index(g) if g in KIND_ORDER else len(KIND_ORDER)
    )
    return table.sort_values(["sparsity", "kind_order", "method"]).drop(columns="kind_order")


def latency_noisy(row: pd.Series) -> bool:
    """Some seed's latency pass had a dense-vs-dense control off by more than the tolerance."""
    return any(row.get(f"inference/latency_noisy_b{b}:mean", 0) > 0 for b in (1, 8))


def no_better_than_constant(runs: pd.DataFrame) -> dict[str, int]:
    """Per task, the runs whose main test metric is no better than the task's best constant
    prediction (``constant/`` metrics, ``core.constant_predictor``): a head that learned
    nothing of its task."""
    counts = {}
    for column in sorted(str(c) for c in runs.columns if str(c).startswith(CONSTANT)):
        task_metric = column.removeprefix(CONSTANT)
        task, metric = task_metric.rsplit("/", 1)
        spec = MAIN_METRICS.get(metric)
        if spec is None or task_metric not in runs:
            continue
        value, floor = runs[task_metric], runs[column]
        worse = value <= floor if spec.higher_is_better else value >= floor
        counts[task] = int(worse.sum())
    return counts


def health_note(runs: pd.DataFrame) -> str:
    """What broke in a row's runs: layers pruned away and tasks cut off from the input at the
    end of training, a task whose own weights (its head) were pruned beyond
    ``STARVED_SPARSITY`` or whose main metric is no better than its best constant prediction
    (starved: Δm can average its loss with another task's gain), and a
    train loss that rose above ``LOSS_SPIKE_FACTOR`` times its first value on the way, each with
    the number of seeds it happened in; "" when healthy."""
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
    starved = {
        column.removeprefix(OWNER_SPARSITY): int((runs[column] > STARVED_SPARSITY).sum())
        for column in sorted(runs.columns)
        if str(column).startswith(OWNER_SPARSITY) and column != f"{OWNER_SPARSITY}{SHARED}"
    }
    for counts, why in (
        (starved, f"its own weights pruned beyond {STARVED_SPARSITY:.0%}"),
        (no_better_than_constant(runs), "no better than a constant prediction"),
    ):
        listed = ", ".join(f"{t} ({c}/{len(runs)} seeds)" for t, c in counts.items() if c)
        if listed:
            notes.append(f"task starved, {why}: {listed}")
    spikes = runs[LOSS_SPIKE].dropna() if LOSS_SPIKE in runs else pd.Series(dtype=float)
    spiked = spikes[spikes > LOSS_SPIKE_FACTOR]
    if len(spiked):
        notes.append(
            f"train loss spiked to {spiked.max():.0f}x its first value "
            f"({len(spiked)}/{len(runs)} seeds)"
        )
    return "; ".join(notes)
