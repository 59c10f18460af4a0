"""The agreement with the paper on a small hand-made table: the paper's Δm from its metrics, the
orderings it reports within each group, Kendall's tau and each ordering's verdict, all computed
here by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmarks.reporting.agreement import (
    HOLDS,
    NOT_RUN,
    REVERSED,
    REVERSED_IN_MEANS,
    agreement,
    counterpart,
    paper_delta_m,
    paper_orderings,
)

# (method, group, pretrained, seg mIoU (higher better), normal mean error (lower better))
PAPER = [
    ("deeplab_baseline", "dense", "n/a", 50.0, 20.0),
    ("a", "static", "no", 45.0, 22.0),  # -10 %, -10 %: Δm -10
    ("b", "static", "no", 40.0, 24.0),  # -20, -20: -20
    ("c", "static", "no", 30.0, 30.0),  # -40, -50: -45
    ("l", "static", "yes", 48.0, 20.4),  # -4, -2: -3 (starts trained: in no ordering)
    ("d", "dynamic", "no", 50.0, 20.0),  # 0
    ("e", "dynamic", "no", 45.0, 20.0),  # -10, 0: -5
]
OURS = {  # Δm per seed at 90%
    "a": [-5.0, -6.0, -7.0],
    "b": [-8.0, -9.0, -10.0],  # a - b = 3, 3, 3: holds beyond the intervals
    "c": [-7.0, -12.0, -3.0],  # b - c = -1, 3, -7: reversed in the means
    "d": [-1.0, -2.0, -3.0],
    "e": [0.0, -1.0, -2.0],  # d - e = -1, -1, -1: reversed beyond the intervals
    "l": [1.0, 1.0, 1.0],
}


def reference() -> pd.DataFrame:
    rows = []
    for method, group, pretrained, miou, angle in PAPER:
        rows.append((method, group, pretrained, "seg", "mIoU", 1, miou))
        rows.append((method, group, pretrained, "sn", "MeanErr", 0, angle))
    columns = ["method", "group", "pretrained", "task", "metric", "higher_is_better", "value"]
    return pd.DataFrame(rows, columns=columns).assign(dataset="nyuv2")


def runs(methods=OURS) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"kind": "static", "method": m, "seed": s, "sparsity": 0.9, "delta_m": v}
            for m, values in methods.items()
            for s, v in enumerate(values)
        ]
        + [{"kind": "static", "method": "a", "seed": 0, "sparsity": 0.5, "delta_m": 99.0}]
    )


def test_the_papers_delta_m_and_its_orderings_within_each_group():
    paper = paper_delta_m(reference()).set_index("method")["delta_m"]
    expected = {"a": -10.0, "b": -20.0, "c": -45.0, "l": -3.0, "d": 0.0, "e": -5.0}
    assert paper.to_dict() == pytest.approx(expected)
    orderings = paper_orderings(paper_delta_m(reference()))
    assert orderings == [("static", "a", "b"), ("static", "b", "c"), ("dynamic", "d", "e")]


def test_kendalls_tau_and_each_verdict_against_a_hand_count():
    found = agreement("nyuv2", runs(), reference())
    # paper: d > l > e > a > b > c; ours (means): l > e > d > a > c > b. Of the 15 pairs,
    # (d, l), (d, e) and (b, c) are discordant: tau = (12 - 3) / 15.
    assert found.tau == pytest.approx(0.6)
    verdicts = {(o.better, o.worse): o for o in found.orderings}
    assert verdicts[("a", "b")].verdict == HOLDS
    assert verdicts[("a", "b")].difference == pytest.approx(3.0)
    assert verdicts[("b", "c")].verdict == REVERSED_IN_MEANS
    assert verdicts[("b", "c")].difference == pytest.approx(-5 / 3)
    assert verdicts[("d", "e")].verdict == REVERSED


def test_a_method_we_did_not_run_is_named_not_judged():
    found = agreement("nyuv2", runs({k: v for k, v in OURS.items() if k != "c"}), reference())
    (missing,) = [o for o in found.orderings if o.worse == "c"]
    assert missing.verdict == NOT_RUN and math.isnan(missing.difference)
    assert "c" not in found.methods


def test_embedded_settings_compare_with_the_dataset_they_stand_in_for():
    assert counterpart("synthetic", ["seg", "normal"]) == "nyuv2"
    assert counterpart("synthetic", ["seg", "depth"]) == "cityscapes"
    assert counterpart("synthetic", ["seg", "normal", "depth", "keypoint", "edge"]) == "taskonomy"
    assert counterpart("cityscapes", ["seg", "depth"]) == "cityscapes"
    assert counterpart("synthetic", ["seg", "edge"]) is None


def test_an_ordering_short_of_holding_names_what_the_runs_show_behind_it():
    """A starved row, a longer budget, or nothing but the seeds' spread."""
    from benchmarks.reporting.agreement import HOLDS_IN_MEANS, Ordering, measured_cause

    def rows(method, steps, owner=0.5):
        return [
            {
                "method": method,
                "sparsity": 0.9,
                "seed": seed,
                "budget/train_steps": steps,
                "sparsity/owner/seg": owner,
            }
            for seed in range(3)
        ]

    runs = pd.DataFrame(rows("snip", 800, owner=0.998) + rows("random", 800) + rows("imp", 1320))
    runs = pd.concat([runs, pd.DataFrame(rows("dp", 1200))])
    starved = Ordering("static", "snip", "random", -28.0, 7.0, REVERSED)
    assert measured_cause(starved, runs) == (
        "snip: task starved, its own weights pruned beyond 99%: seg (3/3 seeds)"
    )
    longer = Ordering("pretrained", "dp", "imp", -3.3, 2.6, REVERSED)
    assert measured_cause(longer, runs) == "imp trained 1320 steps in all, dp 1200"
    level = Ordering("static", "random", "dp", 0.5, 3.0, HOLDS_IN_MEANS)  # dp leads in neither
    assert measured_cause(level, runs) == "within the spread of 3 seeds (not a real difference)"
    assert measured_cause(Ordering("static", "imp", "dp", 5.0, 1.0, HOLDS), runs) == ""
