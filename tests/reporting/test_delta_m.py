"""delta-m variants on hand-computed numbers, and how the leaderboard pairs runs with baselines."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmarks.reporting.delta_m import delta_m, delta_m_metrics, task_changes
from benchmarks.reporting.settings import Comparison, split_settings
from benchmarks.reporting.tables import fallback_lines

TASKS = {"seg": "seg", "normal": "normal"}
BASELINE = {
    "seg/mIoU": 50.0,
    "seg/pixel_acc": 80.0,
    "seg/mIoU_adashare": 60.0,
    "seg/pixel_acc_adashare": 70.0,
    "normal/mean_angle": 20.0,
    "normal/median_angle": 15.0,
    "normal/within_11.25": 40.0,
    "normal/within_22.5": 60.0,
    "normal/within_30": 70.0,
}
ROW = {
    "seg/mIoU": 55.0,  # +10 %
    "seg/pixel_acc": 76.0,  # -5 %
    "seg/mIoU_adashare": 6.0,  # display only: would be -90 % if it entered
    "seg/pixel_acc_adashare": 7.0,
    "normal/mean_angle": 21.0,  # lower is better: -5 %
    "normal/median_angle": 15.0,  # 0
    "normal/within_11.25": 44.0,  # +10 %
    "normal/within_22.5": 60.0,  # 0
    "normal/within_30": 63.0,  # -10 %
}


def test_all_metrics_averages_each_tasks_metrics_then_the_tasks():
    seg = (10.0 - 5.0) / 2
    normal = (-5.0 + 0.0 + 10.0 + 0.0 - 10.0) / 5
    assert delta_m(ROW, BASELINE, TASKS) == pytest.approx((seg + normal) / 2)  # 0.75
    assert task_changes(ROW, BASELINE, TASKS) == pytest.approx({"seg": 2.5, "normal": -1.0})
    assert task_changes(ROW, BASELINE, TASKS, "main_metric") == pytest.approx(
        {"seg": 10.0, "normal": -5.0}
    )


def test_main_metric_takes_one_metric_per_task():
    assert delta_m_metrics(TASKS, "main_metric") == ["seg/mIoU", "normal/mean_angle"]
    assert delta_m(ROW, BASELINE, TASKS, "main_metric") == pytest.approx((10.0 - 5.0) / 2)


def test_main_metric_of_depth_and_maps():
    tasks = {"d": "depth", "k": "keypoint", "e": "edge"}
    assert delta_m_metrics(tasks, "main_metric") == ["d/abs_err", "k/mae", "e/mae"]


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="all_metrics, main_metric.*'median'"):
        delta_m_metrics(TASKS, "median")


def runs_frame(rows):
    """A frame shaped like ``collect_runs``' output, for one setting."""
    base = {
        "dataset": "synthetic",
        "tasks": json.dumps(TASKS),
        "model": "small_cnn",
        "protocol": "p",
        "setting_id": "abc",
        "sparsity": 0.0,
        "sanity": "none",
    }
    return pd.DataFrame([base | row for row in rows])


def test_each_run_is_paired_with_its_own_seeds_baseline_and_a_missing_one_is_named():
    dense = [{"method": "dense", "kind": "dense", "seed": s} | BASELINE for s in (0, 1)]
    dense[1] = dense[1] | {"seg/mIoU": 100.0}  # seed 1's baseline is much better
    pruned = [
        {"method": "snip", "kind": "static", "sparsity": 0.9, "seed": s} | ROW for s in (0, 1, 2)
    ]
    (setting,) = split_settings(runs_frame(dense + pruned))
    by_seed = setting.runs[setting.runs["method"] == "snip"].set_index("seed")
    seg_1 = ((55.0 - 100.0) / 100.0 * 100 - 5.0) / 2
    assert by_seed.loc[0, "delta_m"] == pytest.approx(0.75)
    assert by_seed.loc[1, "delta_m"] == pytest.approx((seg_1 - 1.0) / 2)
    seg_mean = ((55.0 - 75.0) / 75.0 * 100 - 5.0) / 2  # seed 2: the baseline's mean mIoU, 75
    assert by_seed.loc[2, "delta_m"] == pytest.approx((seg_mean - 1.0) / 2)
    assert by_seed["baseline_fallback"].tolist() == [False, False, True]
    lines = fallback_lines(setting.runs, Comparison())
    assert lines[1] == "- snip at sparsity 0.9: seed(s) 2"


def test_comparisons_name_their_files_apart():
    assert Comparison().suffix == ""
    assert Comparison("single_task").suffix == "_vs_single_task"
    assert Comparison("single_task", "main_metric").suffix == "_vs_single_task_main_metric"
    with pytest.raises(ValueError, match="baseline must be one of dense, single_task"):
        Comparison("magnitude")


def test_leaderboard_files_are_replaced_all_at_once_or_not_at_all(tmp_path, monkeypatch):
    """A leaderboard stopped midway (kill -9 left 0-byte and half-new files) keeps the old ones."""
    from benchmarks.reporting.staged import staged_files

    old = {"a.md": "old a", "b.csv": "old b"}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(RuntimeError), staged_files() as files:
        files.write_text(tmp_path / "a.md", "new a")
        raise RuntimeError("stopped before b.csv was written")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == old  # no partial files left
    with staged_files() as files:
        files.write_text(tmp_path / "a.md", "new a")
        files.write_text(tmp_path / "b.csv", "new b")
        assert (tmp_path / "a.md").read_text() == "old a"  # nothing replaced before the end
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "a.md": "new a",
        "b.csv": "new b",
    }
