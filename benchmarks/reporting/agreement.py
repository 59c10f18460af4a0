"""How a setting's ranking agrees with the DiSparse paper's table for its dataset: Kendall's tau
between the paper's Δm and ours over the methods both have, and each ordering the paper reports
within a group of its table (static, dynamic, pretrained), judged on our paired seeds.

The paper's Δm of a method is computed from its published metrics (``results/reference/``)
against its dense DeepLab baseline with this suite's formula (``delta_m.task_changes``'s rule:
mean over each task's metrics of the signed relative change, then over tasks). Our Δm is each
run's, paired by seed. An embedded setting is compared with the paper's table of the dataset it
stands in for (``COUNTERPARTS``: by its tasks); a paper preset with its own dataset's.

Verdicts for "a > b" (the paper's order) from the paired differences a - b over the seeds both
have, with their 95% t-interval: *holds beyond the intervals* (the interval is above 0), *holds
in the means* (mean above 0, the interval spans it), *reversed in the means*, *reversed beyond
the intervals*, or *not run*. Intervals are per comparison, not corrected for multiplicity.
Beside a verdict short of "holds beyond the intervals", what the runs show behind it
(``measured_cause``): a starved or broken row, a longer training budget, or no real difference.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats
from tabulate import tabulate

from benchmarks.reporting.reference import PAPER_DENSE, REFERENCE_CSV, SOURCE
from benchmarks.reporting.settings import health_note, per_seed_delta_m
from benchmarks.reporting.statistics import t_interval
from benchmarks.tracking.schema import TRAIN_STEPS

PAPER_LEVEL = 0.9  # every compressed row of the paper's tables is at 90%
# Real datasets name their own table; an embedded setting stands in for the dataset whose tasks
# it has (the synthetic defaults mirror NYUv2, Cityscapes and Taskonomy).
REAL = ("nyuv2", "cityscapes", "taskonomy")
COUNTERPARTS = {
    frozenset({"seg", "normal"}): "nyuv2",
    frozenset({"seg", "depth"}): "cityscapes",
    frozenset({"seg", "normal", "depth", "keypoint", "edge"}): "taskonomy",
}
HOLDS, HOLDS_IN_MEANS = "holds beyond the intervals", "holds in the means"
REVERSED_IN_MEANS, REVERSED = "reversed in the means", "reversed beyond the intervals"
NOT_RUN = "not run"
GROUP_ORDER = ("static", "dynamic", "pretrained")  # the paper's table sections, in its order


def counterpart(dataset: str, tasks: list[str]) -> str | None:
    """The paper table a setting compares with, or None."""
    return dataset if dataset in REAL else COUNTERPARTS.get(frozenset(tasks))


def paper_delta_m(reference: pd.DataFrame) -> pd.DataFrame:
    """One row per paper method of a dataset: its ``group`` (the table's section), whether it
    starts from a trained model, and its Δm against the paper's dense baseline."""
    base = reference[reference["method"] == PAPER_DENSE]
    baseline = {
        (t, m): v for t, m, v in zip(base["task"], base["metric"], base["value"], strict=True)
    }
    rows = []
    for method, results in reference[reference["method"] != PAPER_DENSE].groupby("method"):
        per_task: dict[str, list[float]] = {}
        for _, r in results.iterrows():
            b = baseline.get((r["task"], r["metric"]))
            if b is None or b == 0:
                continue
            sign = 1.0 if r["higher_is_better"] else -1.0
            per_task.setdefault(r["task"], []).append(sign * (r["value"] - b) / b)
        change = [sum(v) / len(v) for v in per_task.values()]
        first = results.iloc[0]
        rows.append(
            {
                "method": method,
                "group": first["group"],
                "pretrained": first["pretrained"] == "yes",
                "delta_m": 100.0 * sum(change) / len(change),
            }
        )
    return pd.DataFrame(rows)


def paper_orderings(paper: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(group, better, worse): adjacent pairs of each group's ranking in the paper. A static
    group's rows that start from a trained model (LTH) belong to no group's ordering."""
    pairs = []
    for group in sorted(set(paper["group"]), key=GROUP_ORDER.index):
        rows = paper[paper["group"] == group]
        members = rows if group != "static" else rows[~rows["pretrained"]]
        ranked = members.sort_values("delta_m", ascending=False)["method"].tolist()
        pairs += [(str(group), a, b) for a, b in itertools.pairwise(ranked)]
    return pairs


@dataclass(frozen=True)
class Ordering:
    group: str
    better: str
    worse: str
    difference: float  # ours: mean of the paired a - b
    half_width: float  # its 95% interval's half-width (NaN: fewer than two shared seeds)
    verdict: str


def judge(group: str, better: str, worse: str, seeds: dict[str, dict[int, float]]) -> Ordering:
    """The verdict on the paper's "better > worse" from our per-seed Δm."""
    if better not in seeds or worse not in seeds:
        return Ordering(group, better, worse, math.nan, math.nan, NOT_RUN)
    shared = sorted(set(seeds[better]) & set(seeds[worse]))
    if not shared:
        return Ordering(group, better, worse, math.nan, math.nan, NOT_RUN)
    mean, half = t_interval([seeds[better][s] - seeds[worse][s] for s in shared])
    if math.isfinite(half) and mean - half > 0:
        verdict = HOLDS
    elif math.isfinite(half) and mean + half < 0:
        verdict = REVERSED
    else:
        verdict = HOLDS_IN_MEANS if mean > 0 else REVERSED_IN_MEANS
    return Ordering(group, better, worse, mean, half, verdict)


@dataclass(frozen=True)
class Agreement:
    dataset: str  # the paper table compared with
    methods: list[str]  # methods both have
    tau: float
    p_value: float
    orderings: list[Ordering]
    paper_delta_m: dict[str, float]  # each paper method's Δm against the paper's dense baseline


def agreement(dataset: str, runs: pd.DataFrame, reference: pd.DataFrame) -> Agreement | None:
    """Our runs at the paper's sparsity (columns method, seed, sparsity, delta_m) against the
    paper's rows of ``dataset`` (``results/reference`` rows of that dataset); None without
    paper rows or without a common method."""
    if reference.empty:
        return None
    paper = paper_delta_m(reference)
    theirs = dict(zip(paper["method"], paper["delta_m"], strict=True))
    seeds = per_seed_delta_m(runs, PAPER_LEVEL)
    common = [m for m in theirs if m in seeds]
    if not common:
        return None
    ours = [sum(seeds[m].values()) / len(seeds[m]) for m in common]
    tau, p = (
        stats.kendalltau([theirs[m] for m in common], ours)
        if len(common) > 1
        else (math.nan, math.nan)
    )
    orderings = [judge(g, a, b, seeds) for g, a, b in paper_orderings(paper)]
    return Agreement(dataset, common, float(tau), float(p), orderings, theirs)


def load_paper_rows(dataset: str) -> pd.DataFrame:
    """The paper's raw rows of ``dataset`` (all metrics, the dense baseline included)."""
    if not REFERENCE_CSV.is_file():
        return pd.DataFrame()
    frame = pd.read_csv(REFERENCE_CSV)
    return frame[frame["dataset"] == dataset]


def measured_cause(ordering: Ordering, runs: pd.DataFrame) -> str:
    """What the runs themselves show behind an ordering that does not hold beyond the intervals:
    a broken or starved row (its health note), a budget the leader had more of (its training
    steps), or, with neither, a difference within the seeds' spread. "" when it holds."""
    if ordering.verdict in (HOLDS, NOT_RUN):
        return ""
    at_level = runs[(runs["sparsity"] - PAPER_LEVEL).abs() < 1e-9]
    rows = {m: at_level[at_level["method"] == m] for m in (ordering.better, ordering.worse)}
    causes = [f"{m}: {note}" for m, r in rows.items() if (note := health_note(r))]
    if TRAIN_STEPS in at_level:
        steps = {m: float(r[TRAIN_STEPS].mean()) for m, r in rows.items()}
        leader, other = (
            (ordering.better, ordering.worse)
            if ordering.difference > 0
            else (ordering.worse, ordering.better)
        )
        if steps[leader] > steps[other]:
            causes.append(
                f"{leader} trained {steps[leader]:g} steps in all, {other} {steps[other]:g}"
            )
    if not causes and ordering.verdict in (HOLDS_IN_MEANS, REVERSED_IN_MEANS):
        seeds = at_level[at_level["method"] == ordering.better]["seed"].nunique()
        causes.append(f"within the spread of {seeds} seeds (not a real difference)")
    return "; ".join(causes)


AGREEMENT_HEADER = (
    "group",
    "paper's ordering",
    "paper Δm",
    "ours: paired difference",
    "verdict",
    "measured cause",
)
AGREEMENT_NOTE = (
    "Paper Δm: computed from {source} against the paper's dense DeepLab baseline with this "
    "suite's Δm rule. Ours: the paired difference of the two methods' Δm over the seeds both "
    "have, mean ± 95% t-interval (per ordering, not corrected for multiplicity)."
)


def setting_agreement(
    dataset: str, tasks: list[str], runs: pd.DataFrame
) -> tuple[Agreement, list[list[str]]] | None:
    """A setting's agreement and its table rows (``AGREEMENT_HEADER``), or None when it has no
    paper counterpart or no common method."""
    table = counterpart(dataset, tasks)
    if table is None:
        return None
    found = agreement(table, runs, load_paper_rows(table))
    if found is None:
        return None
    paper = found.paper_delta_m
    body = []
    for o in found.orderings:
        ours = "-" if math.isnan(o.difference) else f"{o.difference:+.2f}"
        if math.isfinite(o.half_width):
            ours += f" ± {o.half_width:.2f}"
        ordering = f"{o.better} > {o.worse}"
        body.append([o.group, ordering, f"{paper[o.better]:+.2f} > {paper[o.worse]:+.2f}", ours])
        body[-1] += [o.verdict, measured_cause(o, runs)]
    return found, body


def agreement_title(dataset: str, found: Agreement) -> str:
    stand_in = "" if dataset == found.dataset else " (embedded stand-in)"
    return f"Agreement with the paper's {found.dataset} table at {100 * PAPER_LEVEL:g}%{stand_in}"


def tau_line(found: Agreement) -> str:
    return (
        f"Kendall's τ between the paper's Δm and ours over the {len(found.methods)} methods both "
        f"have ({', '.join(found.methods)}): {found.tau:.2f} (p = {found.p_value:.2f})."
    )


def agreement_section(dataset: str, tasks: list[str], runs: pd.DataFrame) -> list[str]:
    """Markdown lines of a setting's agreement with its paper table ([] when it has none)."""
    made = setting_agreement(dataset, tasks, runs)
    if made is None:
        return []
    found, body = made
    return [
        f"### {agreement_title(dataset, found)}",
        "",
        tau_line(found),
        "",
        tabulate(body, headers=list(AGREEMENT_HEADER), tablefmt="github", disable_numparse=True),
        "",
        AGREEMENT_NOTE.format(source=SOURCE)
        + " `python -m benchmarks.tools.agreement` prints this for every setting.",
        "",
    ]
