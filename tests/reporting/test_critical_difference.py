"""The critical-difference diagram's ranks and tests on hand-made runs: average ranks by Δm
over (sparsity, seed) blocks counted by hand, Friedman's statistic by its formula, and blocks
or methods that would break the test left out."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.reporting.critical_difference import blocks_of, plot_critical_difference, rank_test

DELTA_M = {  # method -> Δm in blocks (0.5, seed 0), (0.5, 1), (0.9, 0), (0.9, 1)
    "a": [-1.0, -2.0, -5.0, -6.0],  # best in every block: rank 1
    "b": [-3.0, -2.5, -7.0, -9.0],  # 2, 2, 3, 3
    "c": [-4.0, -9.0, -6.0, -8.0],  # 3, 3, 2, 2
}


def runs(extra=()) -> pd.DataFrame:
    rows = [
        {"kind": "static", "method": m, "sparsity": s, "seed": seed, "delta_m": v}
        for m, values in DELTA_M.items()
        for (s, seed), v in zip([(0.5, 0), (0.5, 1), (0.9, 0), (0.9, 1)], values, strict=True)
    ]
    rows.append({"kind": "dense", "method": "dense", "sparsity": 0.0, "seed": 0, "delta_m": 0.0})
    return pd.DataFrame([*rows, *extra])


def test_ranks_and_friedman_by_hand(tmp_path):
    test = rank_test(runs())
    assert test.blocks == 4
    assert test.ranks.to_dict() == {"a": 1.0, "b": 2.5, "c": 2.5}
    # Friedman: 12 n / (k (k + 1)) * sum (R_j - (k + 1) / 2)^2 with n = 4 blocks, k = 3
    statistic = 12 * 4 / (3 * 4) * ((1 - 2) ** 2 + (2.5 - 2) ** 2 + (2.5 - 2) ** 2)
    from scipy import stats

    assert test.friedman_p == pytest.approx(stats.chi2.sf(statistic, df=2))
    assert list(test.p_values.index) == ["a", "b", "c"]
    plot_critical_difference(test, "hand-made", tmp_path / "cd.png")
    assert (tmp_path / "cd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_method_missing_blocks_is_left_out_rather_than_the_blocks():
    extra = [{"kind": "static", "method": "d", "sparsity": 0.5, "seed": 0, "delta_m": 1.0}]
    wide = blocks_of(runs(extra))
    assert list(wide.columns) == ["a", "b", "c"] and len(wide) == 4
    assert rank_test(runs().query("method != 'c'")) is None  # two methods: no diagram
