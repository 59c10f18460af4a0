"""Comparing two stores' results run by run."""

from __future__ import annotations

import math

import pandas as pd

from benchmarks.tools.compare_runs import compare

COLUMNS = ["method", "protocol", "sanity", "sparsity", "seed", "seg/mIoU", "normal/mae"]


def frame(rows):
    return pd.DataFrame(rows, columns=COLUMNS)


def test_identical_differing_and_unmatched_runs_are_told_apart():
    a = frame(
        [
            ["snip", "main", "none", 0.9, 0, 50.0, math.nan],
            ["rigl", "main", "none", 0.9, 0, 60.0, 1.0],
        ]
    )
    b = frame(
        [
            ["snip", "main", "none", 0.9, 0, 50.0, math.nan],
            ["rigl", "main", "none", 0.9, 0, 60.5, 1.0],
            ["gmp", "main", "none", 0.9, 0, 1, 1],
        ]
    )
    identical, differing, unmatched = compare(a, b)
    assert identical == [("snip", "main", "none", 0.9, 0)]  # NaN equals NaN
    assert differing == [(("rigl", "main", "none", 0.9, 0), {"seg/mIoU": (60.0, 60.5)})]
    assert unmatched == [("gmp", "main", "none", 0.9, 0)]


def test_runs_of_another_protocol_or_sanity_ablation_are_not_matched():
    a = frame([["snip", "main", "none", 0.9, 0, 50.0, 1.0]])
    b = frame(
        [
            ["snip", "paper_nyuv2", "none", 0.9, 0, 51.0, 1.0],
            ["snip", "main", "random_labels", 0.9, 0, 52.0, 1.0],
        ]
    )
    identical, differing, unmatched = compare(a, b)
    assert identical == [] and differing == []
    assert len(unmatched) == 3
