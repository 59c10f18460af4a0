"""The sanity-check table (Frankle et al., ICLR 2021): does a prune-at-init method's choice of
weights matter, or only the layer densities it implies? And does a channel criterion's choice of
channels matter, or only the channel counts it implies (its ``shuffle``: matched random channels)?

And the scratch controls of Liu et al. (ICLR 2019) for methods that start from the trained
dense model: does the trained model's pruning and fine-tuning beat the same pruned network
trained from scratch (``scratch_e``: dense's steps; ``scratch_b``: the pipeline's FLOPs)?

For each method and target sparsity with ablated runs: delta-m of the method and of each
ablation (mean ± 95% interval over seeds, paired by seed against dense), and the paired t-test
p-value of method vs ablation. "only layer densities" when shuffling the masks within layers
does not make the method significantly worse.
"""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from benchmarks.reporting.statistics import ALPHA, paired_p_value, t_interval
from methods.sanity import SANITY_CHECKS

ABLATIONS = SANITY_CHECKS[1:]  # shuffle, reinit, invert, scratch_e, scratch_b
NOT_ABLATED = SANITY_CHECKS[0]
CHOICE_VERDICTS = (  # against the shuffled control: beats, not separable, loses
    "yes: its choice beats the shuffled control",
    "no: only its per-layer counts count",
    "no: only its per-layer counts count",
)
SCRATCH_VERDICTS = (  # against scratch_b
    "yes: it beats scratch_b",
    "no: not separable from scratch_b",
    "no: scratch_b beats it",
)


def is_ablated(runs: pd.DataFrame) -> pd.Series:
    """Rows that are sanity-check ablations (older runs without the tag are not)."""
    return runs["sanity"].fillna(NOT_ABLATED).isin(ABLATIONS)


def seed_values(runs: pd.DataFrame, column: str = "delta_m") -> dict[int, float]:
    """{seed: value} of ``column`` over ``runs``, runs without a value left out."""
    kept = runs.dropna(subset=[column])
    return dict(zip(kept["seed"].astype(int), kept[column].astype(float), strict=True))


def interval_text(values: dict[int, float]) -> str:
    """ "mean ± half-width" of the 95% t-interval over seeds; the mean alone with one seed."""
    mean, half = t_interval(list(values.values()))
    if math.isnan(mean):
        return "-"
    return f"{mean:.2f}" if math.isnan(half) else f"{mean:.2f} ± {half:.2f}"


def _cell(values: dict[int, float], original: dict[int, float] | None) -> str:
    text = interval_text(values)
    if text == "-":
        return text
    if original is not None:
        p = paired_p_value(original, values)
        text += "" if math.isnan(p) else f" (p={p:.2g})"
    return text


def _verdict(
    original: dict[int, float], control: dict[int, float], beats: str, otherwise: str, loses: str
) -> str:
    """``beats`` when the method is significantly better than its control, ``loses`` when
    significantly worse, else ``otherwise``."""
    if not control:
        return "-"
    p = paired_p_value(original, control)
    if math.isnan(p):
        return "- (needs 2+ seeds of both)"
    gain = sum(original[s] - control[s] for s in original if s in control)
    if p >= ALPHA:
        return otherwise
    return beats if gain > 0 else loses


def render_sanity_table(runs: pd.DataFrame, ablated: pd.DataFrame) -> list[str]:
    """Markdown lines for the ablated runs of one setting (``runs``: its unablated runs)."""
    if ablated.empty:
        return []
    header = ["method", "sparsity %", "seeds", "method Δm", *(f"{a} Δm" for a in ABLATIONS)]
    header += ["per-weight choice matters?", "the trained weights matter?"]
    body = []
    for (method, level), rows in ablated.groupby(["method", "sparsity"], sort=True):
        original = seed_values(runs[(runs["method"] == method) & (runs["sparsity"] == level)])
        by_check = {a: seed_values(rows[rows["sanity"] == a]) for a in ABLATIONS}
        line = [method, f"{100 * level:g}", len(original), _cell(original, None)]
        line += [_cell(by_check[a], original) for a in ABLATIONS]
        line.append(_verdict(original, by_check["shuffle"], *CHOICE_VERDICTS))
        line.append(_verdict(original, by_check["scratch_b"], *SCRATCH_VERDICTS))
        body.append(line)
    return [
        "### Sanity checks (Frankle et al., ICLR 2021; matched random channels; scratch controls)",
        "",
        tabulate(body, headers=header, tablefmt="github", disable_numparse=True),
        "",
        "Δm against dense, mean ± 95% interval over seeds; p: paired t-test over seeds against "
        "the unablated method. shuffle: masks permuted within each layer (same layer densities, "
        "random weights; for a channel criterion: as many channels removed from each group, drawn "
        "at random); reinit: same masks, weights re-drawn after pruning; invert: the "
        "lowest-ranked weights kept. A method whose shuffled masks do as well only chooses how "
        "dense each layer is. scratch_e / scratch_b (Liu et al., ICLR 2019): the method's pruned "
        "network re-initialised and trained from scratch for dense's steps / for the training "
        "FLOPs of the method's whole pipeline (at most twice dense's steps); a method that does "
        "not beat scratch_b gains nothing from the trained weights it started from.",
        "",
    ]
