"""Do channel criteria separate, and when? Δm of every structured row right after pruning, after
a short fine-tune (``protocol.readout_steps``) and at the end, each criterion against its random
control.

Fine-tuning evens criteria out: after enough steps a scored choice of channels and a random one
with the same channel counts reach the same quality, so a table of final numbers alone cannot tell
criteria apart. The literature reads them out before and early in fine-tuning as well. The control
of a criterion is its own matched random control (``sanity=shuffle``: the same channel count in
every group, channels drawn at random; ``experiment=sanity``) when the store has it, else
``channel_random`` (the same layer-uniform fractions, so the same counts for layer-uniform
criteria). Differences are paired by seed and Holm-corrected over the criteria at each readout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from tabulate import tabulate

from benchmarks.reporting.delta_m import delta_m_metrics
from benchmarks.reporting.sanity_table import interval_text, seed_values
from benchmarks.reporting.settings import Comparison, Setting, with_delta_m
from benchmarks.reporting.statistics import ALPHA, holm_adjusted, paired_p_value
from benchmarks.tracking.schema import READOUT
from methods.lifecycle import MethodKind

CONTROL = "channel_random"
SHUFFLED = "shuffle"
FINAL = "final"


def readout_steps(runs: pd.DataFrame) -> list[int]:
    """The fine-tuning steps the runs were read out at (``readout/<step>/...`` columns)."""
    found = {str(c).removeprefix(READOUT).split("/")[0] for c in runs if str(c).startswith(READOUT)}
    return sorted(int(step) for step in found if step.isdigit())


def at_readout(
    runs: pd.DataFrame, tasks: dict[str, str], comparison: Comparison, step: int
) -> pd.Series:
    """Δm of every run from its metrics read out at fine-tuning ``step`` (NaN for runs without
    them), against the baseline's final metrics (the baseline's own Δm stays 0)."""
    frame = runs.copy()
    compressed = frame["method"] != comparison.baseline
    for metric in delta_m_metrics(tasks, comparison.variant):
        column = f"{READOUT}{step}/{metric}"
        final = frame[metric] if metric in frame else pd.Series(math.nan, frame.index)
        frame[metric] = final.where(~compressed, frame.get(column, math.nan))
    return with_delta_m(frame, tasks, comparison)["delta_m"]


def _label(method: str, sanity: object) -> str:
    return f"{method} [{SHUFFLED}]" if sanity == SHUFFLED else method


def _control_of(label: str, labels: set[str]) -> str | None:
    """The row a criterion is compared with; None for the controls themselves."""
    if label == CONTROL or label.endswith(f"[{SHUFFLED}]"):
        return None
    matched = _label(label, SHUFFLED)
    if matched in labels:
        return matched
    return CONTROL if CONTROL in labels else None


def _cell(values: dict[int, float], control: dict[int, float] | None, p_holm: float) -> str:
    text = interval_text(values)
    if text == "-" or control is None or math.isnan(p_holm):
        return text
    shared = [s for s in values if s in control]
    difference = sum(values[s] - control[s] for s in shared) / len(shared)
    mark = " *" if p_holm < ALPHA else ""
    return f"{text} ({difference:+.2f}, p={p_holm:.2g}{mark})"


def _structured_rows(setting: Setting, comparison: Comparison) -> tuple[pd.DataFrame, list[str]]:
    """The setting's structured runs (ablated ones included, labelled ``[shuffle]``) with a
    Δm column per readout and ``final``; and the names of those columns, in order."""
    runs = pd.concat([setting.runs, setting.ablated], ignore_index=True)
    structured = runs["kind"] == MethodKind.STRUCTURED.value
    steps = readout_steps(runs[structured])
    stages = {f"after {k} steps": at_readout(runs, setting.tasks, comparison, k) for k in steps}
    runs = runs.assign(**stages, **{FINAL: runs["delta_m"]})[structured]
    sanity = runs["sanity"] if "sanity" in runs else pd.Series(None, runs.index)
    labels = [_label(m, s) for m, s in zip(runs["method"], sanity, strict=True)]
    return runs.assign(row=labels), [*stages, FINAL] if steps else []


def _holm_vs_control(rows: dict[str, pd.DataFrame], stage: str) -> dict[str, float]:
    """Holm-adjusted paired p of each criterion against its control at one readout."""
    p_values = {}
    for label, group in rows.items():
        control = _control_of(label, set(rows))
        if control is not None:
            p_values[label] = paired_p_value(
                seed_values(group, stage), seed_values(rows[control], stage)
            )
    return holm_adjusted(p_values)


@dataclass(frozen=True)
class ReadoutLevel:
    """One target sparsity's readout table: its rows and which criteria separate when."""

    header: list[str]
    body: list[list[str]]
    verdict: str


def _level_table(level: float, at_level: pd.DataFrame, stages: list[str]) -> ReadoutLevel:
    rows = dict(iter(at_level.groupby("row", sort=True)))
    adjusted = {stage: _holm_vs_control(rows, stage) for stage in stages}
    body = []
    for label, group in rows.items():
        control = _control_of(label, set(rows))
        line = [label, f"{100 * level:g}", str(group["seed"].nunique()), control or "(control)"]
        for stage in stages:
            reference = seed_values(rows[control], stage) if control else None
            p_holm = adjusted[stage].get(label, math.nan)
            line.append(_cell(seed_values(group, stage), reference, p_holm))
        body.append(line)
    verdicts = "; ".join(
        f"{stage}: {', '.join(k for k, p in adjusted[stage].items() if p < ALPHA) or 'none'}"
        for stage in stages
    )
    header = ["method", "sparsity %", "seeds", "compared with", *stages]
    verdict = f"Criteria that separate from their control at {100 * level:g}%: {verdicts}."
    return ReadoutLevel(header, body, verdict)


READOUT_TITLE = "Structured methods: Δm right after pruning, early in fine-tuning, at the end"
READOUT_NOTE = (
    "Δm against the baseline's final metrics, mean ± 95% interval over seeds; in brackets the "
    "paired difference from the control and its Holm-corrected p over the criteria at that "
    "readout (* below 0.05). Control: the criterion's matched random channels (`[shuffle]`: the "
    "same channel count in every group, `experiment=sanity`) where the store has them, else "
    "channel_random (the same layer-uniform fractions: the same counts for layer-uniform "
    "criteria, not for disparse_channel's union)."
)


def readout_tables(setting: Setting, comparison: Comparison) -> list[ReadoutLevel]:
    """Per target sparsity, each structured row's Δm at each readout and at the end, with its
    paired difference from its control ([] when no structured run was read out)."""
    structured, stages = _structured_rows(setting, comparison)
    if not stages:
        return []
    return [
        _level_table(float(level), at_level, stages)
        for level, at_level in structured.groupby("sparsity", sort=True)
    ]


def render_readout_table(setting: Setting, comparison: Comparison) -> list[str]:
    """Markdown lines of ``readout_tables``."""
    levels = readout_tables(setting, comparison)
    if not levels:
        return []
    lines = [f"### {READOUT_TITLE}", ""]
    for level in levels:
        table = tabulate(level.body, headers=level.header, tablefmt="github", disable_numparse=True)
        lines += [table, "", level.verdict, ""]
    return [*lines, READOUT_NOTE, ""]
