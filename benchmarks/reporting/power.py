"""How many seeds a setting needs to tell its methods apart: the spread of the paired Δm
differences between methods over seeds, and from it the smallest difference a paired t-test
detects with a given number of seeds (power 0.8, two-sided, Holm's first threshold alpha / m
over the m comparisons with the best; the noncentral t), next to how many method
pairs the runs at hand separate after Holm's correction over all pairs."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import brentq
from statsmodels.stats.multitest import multipletests

from benchmarks.reporting.settings import per_seed_delta_m
from benchmarks.reporting.statistics import ALPHA, paired_p_value

POWER = 0.8
SEED_COUNTS = (3, 5, 8, 10)


@dataclass(frozen=True)
class Power:
    sparsity: float
    methods: int
    seeds: int  # seeds every method has here
    spread: float  # median over method pairs of the SD of their paired differences
    pairs: int
    separable: int  # pairs whose paired t-test is significant after Holm over all pairs
    detectable: dict[int, float]  # seeds -> smallest detectable difference (Δm points)


def detectable_difference(spread: float, seeds: int, comparisons: int) -> float:
    """Smallest mean paired difference a two-sided paired t-test at alpha / comparisons finds
    with probability ``POWER`` over ``seeds`` seeds, for paired differences of SD ``spread``."""
    if seeds < 2 or not math.isfinite(spread):
        return math.nan
    alpha = ALPHA / max(comparisons, 1)
    effect = brentq(lambda d: paired_test_power(d, seeds, alpha) - POWER, 1e-3, 60.0)
    return float(effect) * spread


def paired_test_power(effect: float, seeds: int, alpha: float) -> float:
    """Probability that a two-sided paired t-test at ``alpha`` over ``seeds`` seeds rejects when
    the mean difference is ``effect`` standard deviations: the noncentral t's mass beyond the
    critical values (statsmodels' ``TTestPower`` computes the same, but its solver stops short
    at three seeds and its tail turns NaN for large effects)."""
    df, shift = seeds - 1, effect * math.sqrt(seeds)
    critical = stats.t.ppf(1 - alpha / 2, df)
    power = stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift)
    return 1.0 if math.isnan(power) else float(power)


def power_at(runs: pd.DataFrame, level: float) -> Power | None:
    """The power figures of the compressed runs at target sparsity ``level``."""
    seeds = per_seed_delta_m(runs, level)
    if len(seeds) < 2:
        return None
    pairs = list(itertools.combinations(sorted(seeds), 2))
    spreads, p_values = [], []
    for a, b in pairs:
        shared = sorted(set(seeds[a]) & set(seeds[b]))
        if len(shared) >= 2:
            spreads.append(float(np.std([seeds[a][s] - seeds[b][s] for s in shared], ddof=1)))
        p_values.append(paired_p_value(seeds[a], seeds[b]))
    tested = [p for p in p_values if not math.isnan(p)]
    separable = int(multipletests(tested, ALPHA, method="holm")[0].sum()) if tested else 0
    spread = float(np.median(spreads)) if spreads else math.nan
    comparisons = len(seeds) - 1  # with the best
    return Power(
        level,
        len(seeds),
        min(len(v) for v in seeds.values()),
        spread,
        len(pairs),
        separable,
        {n: detectable_difference(spread, n, comparisons) for n in SEED_COUNTS},
    )
