"""How sure a leaderboard number is: intervals over seeds, ties with the best, mean ranks.

- ``t_interval``: mean and the half-width of its 95% confidence interval, Student t over seeds.
- ``paired_p_value``: two-sided paired t-test over the seeds two methods share (each seed's
  methods see the same initialisation and data order, so differences are paired).
- ``ties_with_best``: the best method by mean, and the methods whose paired difference from it
  is not significant after Holm's correction over all the comparisons with the best (adjusted
  p >= 0.05, or fewer than two shared seeds): their ranking is not real. Without the correction,
  one comparison in twenty among 17 would look real by chance.
- ``holm_adjusted``: Holm-adjusted p-values of a family of tests.
- ``mean_ranks``: average rank of each method over several comparisons (1 = best).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

CONFIDENCE = 0.95
ALPHA = 0.05


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(mean, half-width of the two-sided interval); the half-width is NaN for fewer than two
    values, where no interval exists."""
    data = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan
    mean = float(data.mean())
    if data.size < 2:
        return mean, math.nan
    sem = float(data.std(ddof=1)) / math.sqrt(data.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, df=data.size - 1)) * sem


def paired_p_value(a: Mapping[int, float], b: Mapping[int, float]) -> float:
    """Two-sided paired t-test over the seeds both have; NaN with fewer than two, 1.0 when the
    differences are all equal to zero."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return math.nan
    differences = np.array([a[s] - b[s] for s in seeds], dtype=float)
    if np.allclose(differences, differences[0]):
        return 1.0 if differences[0] == 0 else 0.0
    return float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)


def ties_with_best(
    per_seed: Mapping[str, Mapping[int, float]], higher_is_better: bool = True
) -> tuple[str, set[str]]:
    """(best method by mean, methods not significantly different from it, the best included):
    paired t-tests against the best, Holm-adjusted over those comparisons (statsmodels)."""
    means = {m: float(np.mean(list(v.values()))) for m, v in per_seed.items() if v}
    best = (max if higher_is_better else min)(means, key=means.__getitem__)
    others = [m for m in means if m != best]
    p_values = {m: paired_p_value(per_seed[best], per_seed[m]) for m in others}
    testable = [m for m in others if not math.isnan(p_values[m])]
    tied = {best} | {m for m in others if math.isnan(p_values[m])}
    if testable:
        rejected = multipletests([p_values[m] for m in testable], ALPHA, method="holm")[0]
        tied |= {m for m, differs in zip(testable, rejected, strict=True) if not differs}
    return best, tied


def holm_adjusted(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values (statsmodels) of a family of tests; NaN ones stay NaN and are not
    counted in the family."""
    testable = [k for k, p in p_values.items() if not math.isnan(p)]
    adjusted = dict.fromkeys(p_values, math.nan)
    if testable:
        corrected = multipletests([p_values[k] for k in testable], ALPHA, method="holm")[1]
        adjusted.update(zip(testable, (float(p) for p in corrected), strict=True))
    return adjusted


def mean_ranks(
    comparisons: Sequence[Mapping[str, float]], higher_is_better: bool = True
) -> dict[str, float]:
    """Average rank (1 = best, ties share the mean rank) over the comparisons a method is in."""
    ranks: dict[str, list[float]] = {}
    for scores in comparisons:
        names = list(scores)
        values = np.array([scores[n] for n in names], dtype=float)
        ordered = stats.rankdata(-values if higher_is_better else values, method="average")
        for name, rank in zip(names, ordered, strict=True):
            ranks.setdefault(name, []).append(float(rank))
    return {name: float(np.mean(r)) for name, r in ranks.items()}
