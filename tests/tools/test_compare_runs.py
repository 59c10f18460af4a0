"""Comparing two stores' results run by run."""

from __future__ import annotations

import math

import pandas as pd

from benchmarks.tools.compare_runs import compare


def frame(rows):
    return pd.DataFrame(rows, columns=["method", "sparsity", "seed", "seg/mIoU", "normal/mae"])


def test_identical_differing_and_unmatched_runs_are_told_apart():
    a = frame([["snip", 0.9, 0, 50.0, math.nan], ["rigl", 0.9, 0, 60.0, 1.0]])
    b = frame(
        [["snip", 0.9, 0, 50.0, math.nan], ["rigl", 0.9, 0, 60.5, 1.0], ["gmp", 0.9, 0, 1, 1]]
    )
    identical, differing, unmatched = compare(a, b)
    assert identical == [("snip", 0.9, 0)]  # NaN equals NaN
    assert differing == [(("rigl", 0.9, 0), {"seg/mIoU": (60.0, 60.5)})]
    assert unmatched == [("gmp", 0.9, 0)]
