"""The power analysis behind the default number of seeds: the spread of paired differences by
hand, the detectable difference checked against the noncentral t distribution (an independent
formula for a paired test's power), and the pairs separable after Holm's correction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmarks.reporting.power import POWER, detectable_difference, power_at

RUNS = {  # Δm per seed 0-2 at 90%
    "a": [-1.0, -2.0, -3.0],
    "b": [-2.0, -4.0, -3.0],  # a - b: 1, 2, 0 (SD 1)
    "c": [-21.0, -22.0, -23.5],  # a - c: 20, 20, 20.5 (SD 0.289); b - c: 19, 18, 20.5 (SD 1.258)
}


def runs() -> pd.DataFrame:
    rows = [
        {"kind": "static", "method": m, "sparsity": 0.9, "seed": s, "delta_m": v}
        for m, values in RUNS.items()
        for s, v in enumerate(values)
    ]
    return pd.DataFrame([*rows, {"kind": "dense", "method": "dense", "sparsity": 0.0, "seed": 0,
                                 "delta_m": 0.0}])  # fmt: skip


def simulated_power(difference: float, spread: float, seeds: int, alpha: float) -> float:
    """The share of 40000 simulated paired t-tests (normal differences) that reject."""
    rng = np.random.default_rng(0)
    samples = rng.normal(difference, spread, size=(40000, seeds))
    t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / math.sqrt(seeds))
    return float(np.mean(np.abs(t) > stats.t.ppf(1 - alpha / 2, seeds - 1)))


def test_spread_separable_pairs_and_detectable_differences():
    found = power_at(runs(), 0.9)
    spreads = [1.0, np.std([20, 20, 20.5], ddof=1), np.std([19, 18, 20.5], ddof=1)]
    assert found.spread == pytest.approx(np.median(spreads))
    assert (found.methods, found.seeds, found.pairs) == (3, 3, 3)
    # p-values: a-b 0.23, a-c 0.0003, b-c 0.0021; Holm: 0.0003 < 0.05/3, 0.0021 < 0.05/2,
    # 0.23 > 0.05: two pairs separable
    assert found.separable == 2
    for seeds, difference in found.detectable.items():
        simulated = simulated_power(difference, found.spread, seeds, 0.05 / 2)
        assert simulated == pytest.approx(POWER, abs=0.01)
    assert found.detectable[10] < found.detectable[5] < found.detectable[3]
    assert math.isnan(detectable_difference(1.0, 1, 2))
    assert power_at(runs(), 0.5) is None  # no runs there
