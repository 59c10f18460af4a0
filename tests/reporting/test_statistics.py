"""The leaderboard's statistics against numbers computed by hand."""

from __future__ import annotations

import math

import pytest

from benchmarks.reporting.statistics import mean_ranks, paired_p_value, t_interval, ties_with_best


def test_t_interval_by_hand():
    mean, half = t_interval([1.0, 2.0, 3.0])
    # sd 1, sem 1/sqrt(3), t(0.975, df 2) = 4.302652729749464
    assert mean == 2.0
    assert half == pytest.approx(4.302652729749464 / math.sqrt(3))
    assert math.isnan(t_interval([5.0])[1]) and t_interval([5.0])[0] == 5.0


def test_paired_p_value_by_hand():
    a = {0: 1.0, 1: 2.0, 2: 4.0}
    b = {0: 0.0, 1: 1.5, 2: 2.5}
    # differences 1, 0.5, 1.5: mean 1, sd 0.5, t = 1 / (0.5 / sqrt 3) = 3.4641; df 2 -> p = 0.0742
    assert paired_p_value(a, b) == pytest.approx(0.07417990022744847, rel=1e-6)
    assert math.isnan(paired_p_value({0: 1.0}, {0: 2.0}))
    assert paired_p_value(a, a) == 1.0


def test_ties_with_best_marks_only_significant_gaps():
    per_seed = {
        "best": {0: 10.0, 1: 11.0, 2: 12.0},
        "close": {0: 9.0, 1: 11.5, 2: 11.0},  # differences 1, -0.5, 1: not significant
        "worse": {0: 5.0, 1: 6.1, 2: 6.9},  # differences 5, 4.9, 5.1: significant
        "one_seed": {0: 1.0},
    }
    best, tied = ties_with_best(per_seed)
    assert best == "best"
    assert tied == {"best", "close", "one_seed"}  # one shared seed cannot separate


def test_ties_are_holm_corrected_over_the_comparisons_with_the_best():
    """Paired t p-values against "best" (3 seeds): gap 0.00083, near 0.0187, wide 0.529, flat
    0.868. Holm sorts them and compares the i-th smallest with 0.05 / (m - i + 1), stopping at
    the first that is not below: with gap and near, 0.00083 < 0.025 and 0.0187 < 0.05 (both
    differ); with near, wide and flat, 0.0187 is not below 0.05 / 3 (all tied), although near
    alone differs (0.0187 < 0.05)."""
    best = {0: 10.0, 1: 11.0, 2: 12.0}
    gap = {0: 8.0, 1: 8.9, 2: 10.1}  # differences 2.0, 2.1, 1.9
    near = {0: 9.0, 1: 9.6, 2: 11.1}  # differences 1.0, 1.4, 0.9
    wide = {0: 9.0, 1: 12.0, 2: 10.0}  # differences 1, -1, 2
    flat = {0: 9.5, 1: 12.5, 2: 10.5}  # differences 0.5, -1.5, 1.5
    for other, p in ((gap, 0.00083), (near, 0.0187), (wide, 0.529), (flat, 0.868)):
        assert paired_p_value(best, other) == pytest.approx(p, abs=5e-4)
    assert ties_with_best({"best": best, "near": near})[1] == {"best"}
    assert ties_with_best({"best": best, "gap": gap, "near": near})[1] == {"best"}
    assert ties_with_best({"best": best, "gap": gap, "wide": wide})[1] == {"best", "wide"}
    every = {"best": best, "near": near, "wide": wide, "flat": flat}
    assert ties_with_best(every)[1] == {"best", "near", "wide", "flat"}


def test_mean_ranks_average_over_comparisons_and_share_ties():
    ranks = mean_ranks([{"a": 3.0, "b": 2.0, "c": 1.0}, {"a": 1.0, "b": 2.0, "c": 2.0}])
    assert ranks == {"a": (1 + 3) / 2, "b": (2 + 1.5) / 2, "c": (3 + 1.5) / 2}
