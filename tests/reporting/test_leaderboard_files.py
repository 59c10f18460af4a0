"""The leaderboard a sweep writes, read back from the files: every finished run is a row, delta-m
agrees with the formula computed here from the runs' own test metrics, and the plots are whole
PNG files (the session's finished store: ``finished_store`` in conftest)."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmarks.cells.stored import describe
from benchmarks.reporting import leaderboard
from benchmarks.sweep.hydra_callbacks import LeaderboardAfterMultirun
from benchmarks.tracking.collect import collect_runs
from benchmarks.tracking.schema import CODE_FINGERPRINT
from tests.helpers import copy_run, smoke_config

PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"
# The NYUv2-like setting's metrics that enter delta-m, and whether higher is better (by hand).
DIRECTIONS = {
    "seg": {"mIoU": True, "pixel_acc": True},
    "normal": {
        "mean_angle": False,
        "median_angle": False,
        "within_11.25": True,
        "within_22.5": True,
        "within_30": True,
    },
}


def delta_m_by_hand(row: dict[str, float], base: dict[str, float]) -> float:
    per_task = []
    for task, metrics in DIRECTIONS.items():
        changes = []
        for metric, higher in metrics.items():
            key = f"test/{task}/{metric}"
            change = (row[key] - base[key]) / base[key]
            changes.append(change if higher else -change)
        per_task.append(sum(changes) / len(changes))
    return 100 * sum(per_task) / len(per_task)


def setting_csv(results) -> pd.DataFrame:
    (csv,) = [p for p in results.glob("*.csv") if "_vs_" not in p.name]
    return pd.read_csv(csv)


def test_every_finished_run_is_a_row_with_the_delta_m_of_its_own_metrics(finished_store):
    table = setting_csv(finished_store.results)
    # the dense cell is listed again among the architectures, as hard_sharing
    assert sorted(table["method"]) == sorted([*finished_store.runs, "hard_sharing"])
    (shared,) = table[table["method"] == "hard_sharing"].to_dict("records")
    assert shared["kind"] == "architecture" and shared["delta_m:mean"] == 0
    dense = finished_store.runs["dense"].data.metrics
    for method, run in finished_store.runs.items():
        (row,) = table[table["method"] == method].to_dict("records")
        assert row["kind"] == run.data.tags["kind"]
        assert row["seeds"] == 1
        expected = delta_m_by_hand(run.data.metrics, dense)
        assert row["delta_m:mean"] == pytest.approx(expected, abs=1e-4), method
        assert row["sparsity/overall:mean"] == pytest.approx(
            run.data.metrics["sparsity/overall"], abs=1e-6
        )


def test_the_tables_name_every_method_and_the_plots_are_whole_pngs(finished_store):
    results = finished_store.results
    board = (results / "leaderboard.md").read_text()
    for method in finished_store.runs:
        assert f"| {method}" in board
    plots = sorted(results.glob("*.png"))
    assert any(p.name.endswith("_delta_m.png") for p in plots)
    assert any(p.name.endswith("_frontier.png") for p in plots)
    for plot in plots:
        content = plot.read_bytes()
        assert content.startswith(PNG_START) and content.endswith(PNG_END), plot.name
    assert not [p for p in results.iterdir() if p.name.startswith(".")]  # nothing left staged


def test_a_multirun_ends_with_one_leaderboard_of_the_store(finished_store, tmp_path):
    config = smoke_config(
        f"tracking.uri={finished_store.uri}", f"results_dir={tmp_path}/after-multirun"
    )
    LeaderboardAfterMultirun().on_multirun_end(config)
    again = setting_csv(tmp_path / "after-multirun")
    assert again.drop(columns=[c for c in again if c.startswith("time/")]).equals(
        setting_csv(finished_store.results).drop(
            columns=[c for c in again if c.startswith("time/")]
        )
    )


def test_links_planted_at_staging_names_are_never_followed(finished_store, tmp_path):
    """Issue 29 S2: a link at every name the staged files of this process could be guessed to
    have (the old scheme: ``.<stem>.<pid>.partial<suffix>``) points at a victim file; the
    leaderboard leaves the victim alone and writes regular files."""
    results = tmp_path / "results"
    results.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    for final in finished_store.results.iterdir():
        guessed = results / f".{final.stem}.{os.getpid()}.partial{final.suffix}"
        guessed.symlink_to(victim)
    arguments = ["--tracking-uri", finished_store.uri, "--results-dir", str(results)]
    assert leaderboard.main(arguments) == 0
    assert victim.read_text() == "not yours"
    written = [p for p in results.iterdir() if not p.name.startswith(".")]
    assert sorted(p.name for p in written) == sorted(
        p.name for p in finished_store.results.iterdir()
    )
    assert not any(p.is_symlink() for p in written)


def test_a_run_of_todays_code_is_shown_over_a_newer_stale_run_of_its_cell(finished_store, tmp_path):
    """Issue 29 N7: edit a method, rerun, revert: the cell then has an older run made by the code
    as it is and a newer one by the edited code. The leaderboard shows the former."""
    source = finished_store.runs["disparse_static"]
    client = MlflowClient(f"sqlite:///{tmp_path}/copy.db")
    experiment = client.create_experiment("mtl-sparse-bench")
    copies = {}
    for age, fingerprint in (("older", source.data.tags[CODE_FINGERPRINT]), ("newer", "edited")):
        start = source.info.start_time + (1000 if age == "newer" else 0)
        tags = {CODE_FINGERPRINT: fingerprint}
        copies[age] = copy_run(client, experiment, source, tags=tags, start_time=start)
    (row,) = collect_runs(client.tracking_uri, "mtl-sparse-bench", describe).to_dict("records")
    assert row["run_id"] == copies["older"] and not row["stale"]


def test_a_results_folder_in_a_parent_that_cannot_be_written_is_updated_file_by_file(
    tmp_path, monkeypatch
):
    """No copy can be made beside such a folder: its files are replaced one by one (staged),
    as before generations were swapped. (As root every folder is writable: the check is
    answered here as a read-only parent would answer it.)"""
    from benchmarks.reporting import staged

    results = tmp_path / "results"
    results.mkdir()
    (results / "kept.md").write_text("a file of the folder")
    real_access = os.access
    monkeypatch.setattr(
        staged.os, "access", lambda p, mode: False if p == tmp_path else real_access(p, mode)
    )
    with staged.new_generation(results) as (folder, files):
        assert folder == results.resolve()
        files.write_text(folder / "new.md", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no copy beside it
    assert (results / "new.md").read_text() == "new"
    assert (results / "kept.md").read_text() == "a file of the folder"
