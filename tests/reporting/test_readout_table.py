"""The structured readout table on hand-made runs: Δm from the metrics read out at each step,
each criterion against its control, Holm-corrected, and which criteria separate when."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.reporting.readout_table import at_readout, render_readout_table
from benchmarks.reporting.settings import Comparison, Setting, with_delta_m

TASKS = {"depth": "depth"}
MAIN = Comparison(variant="main_metric")  # depth's one metric: abs_err (lower is better)


def run(method: str, kind: str, seed: int, final: float, at_0: float | None = None, **extra):
    row = {"method": method, "kind": kind, "seed": seed, "sparsity": 0.9, "depth/abs_err": final}
    if at_0 is not None:
        row["readout/0/depth/abs_err"] = at_0
    return {**row, **extra}


def setting(rows: list[dict]) -> Setting:
    runs = with_delta_m(pd.DataFrame(rows), TASKS, MAIN)
    ablated = runs["sanity"].eq("shuffle") if "sanity" in runs else runs["method"].isna()
    return Setting("s", "s", TASKS, runs[~ablated], runs[ablated])


DENSE = [run("dense", "dense", s, 1.0, sparsity=0.0) for s in range(3)]
# magnitude is far worse than random right after pruning, level with it after fine-tuning
MAGNITUDE = [
    run("channel_magnitude", "structured", s, f, a)
    for s, (a, f) in enumerate([(1.5, 1.10), (1.6, 1.12), (1.55, 1.09)])
]
RANDOM = [
    run("channel_random", "structured", s, f, a)
    for s, (a, f) in enumerate([(1.2, 1.11), (1.21, 1.10), (1.19, 1.11)])
]


def test_delta_m_at_a_readout_comes_from_the_metrics_read_out_there():
    runs = pd.DataFrame(DENSE + MAGNITUDE)
    values = at_readout(runs, TASKS, MAIN, 0)
    # Δm = -(abs_err - 1.0) / 1.0 x 100 against the dense run's final abs_err of 1.0
    assert list(values[3:]) == pytest.approx([-50.0, -60.0, -55.0])
    assert list(values[:3]) == [0.0, 0.0, 0.0], "the baseline keeps its final metrics"
    without = pd.DataFrame([*DENSE, run("magnitude", "pretrained", 0, 1.2)])
    assert at_readout(without, TASKS, MAIN, 0).isna().iloc[3], "no readout: no Δm"


def test_criteria_separate_right_after_pruning_and_not_at_the_end():
    lines = render_readout_table(setting(DENSE + MAGNITUDE + RANDOM), MAIN)
    text = "\n".join(lines)
    verdict = next(line for line in lines if line.startswith("Criteria that separate"))
    assert verdict == (
        "Criteria that separate from their control at 90%: after 0 steps: channel_magnitude; "
        "final: none."
    )
    # magnitude - random at step 0: -30, -39, -36 -> mean -35.00
    assert "(-35.00, p=" in text
    assert "| channel_random " in text and "(control)" in text


def test_a_matched_shuffle_control_is_preferred_to_channel_random():
    shuffled = [
        {**r, "method": "channel_magnitude", "sanity": "shuffle"}
        for r in RANDOM  # the same numbers under the matched control's name
    ]
    rows = [{**r, "sanity": "none"} for r in DENSE + MAGNITUDE + RANDOM] + shuffled
    text = "\n".join(render_readout_table(setting(rows), MAIN))
    assert (
        "| channel_magnitude           | 90           | 3       | channel_magnitude [shuffle]"
        in text
    )


def test_no_table_without_readouts():
    rows = [{k: v for k, v in r.items() if not k.startswith("readout/")} for r in MAGNITUDE]
    assert render_readout_table(setting(DENSE + rows), MAIN) == []
