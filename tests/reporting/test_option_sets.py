"""Rows never mix runs made under different option values: after a default changed, old and new
runs of one method share a cell id but get a row each."""

from __future__ import annotations

import json

from benchmarks.cells.records import cell_params
from benchmarks.reporting.leaderboard import write_leaderboard
from benchmarks.tracking.store import Tracker
from tests.helpers import smoke_cells


def finished_run(tracker: Tracker, cell, params: dict[str, str], value: float) -> None:
    tags = {
        "cell_id": cell.cell_id,
        "setting_id": cell.setting_id,
        "method": cell.method_name,
        "kind": "static",
        "dataset": "synthetic",
        "tasks": json.dumps({"seg": "seg", "normal": "normal"}),
        "model": "small_cnn",
        "protocol": "smoke",
        "sparsity": f"{cell.sparsity:g}",
        "seed": str(cell.seed),
        "selection": "last",
        "sanity": "none",
        "variant": "",
        "code_fingerprint": cell.code_fingerprint,
    }
    run = tracker.client.create_run(tracker.experiment_id, tags=tags)
    for key, text in params.items():
        tracker.client.log_param(run.info.run_id, key, text)
    for metric in ("seg/mIoU", "seg/pixel_acc", "normal/mean_angle", "sparsity/overall"):
        name = metric if metric.startswith("sparsity") else f"test/{metric}"
        tracker.client.log_metric(run.info.run_id, name, value)
    tracker.client.set_terminated(run.info.run_id, "FINISHED")


def test_runs_made_under_another_default_get_their_own_row(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "mtl-sparse-bench")
    cells = smoke_cells("method=snip", "sparsity=0.5", "sweep.seeds=[0,1,2]")
    old_default = {**cell_params(cells[0], "cpu"), "method.scoring_batches": "99"}
    finished_run(tracker, cells[0], old_default | {"seed": "0"}, 10.0)  # before the change
    for cell in cells[1:]:
        finished_run(tracker, cell, cell_params(cell, "cpu"), 20.0)
    board = write_leaderboard(tracker.uri, tracker.experiment, tmp_path / "results")
    rows = [line for line in board.splitlines() if line.startswith("| static")]
    assert len(rows) == 2, rows
    assert all("snip {options " in row for row in rows)
    seeds = sorted(int(row.split("|")[4]) for row in rows)
    assert seeds == [1, 2]  # one row of 1 seed (the old default), one of 2


def test_a_setting_without_dense_says_why_delta_m_is_missing_and_shows_no_paper_rows(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "mtl-sparse-bench")
    for cell in smoke_cells("method=snip", "sparsity=0.5", "seed=0"):
        finished_run(tracker, cell, cell_params(cell, "cpu"), 20.0)
    board = write_leaderboard(tracker.uri, tracker.experiment, tmp_path / "results")
    assert 'Δm is "-": no dense run for this setting' in board
    assert "`python -m benchmarks.run method=dense" in board
    assert "Paper reference" not in board  # a smoke protocol: published numbers do not apply
    written = {path.name for path in (tmp_path / "results").iterdir()}
    assert not any(name.endswith(("_delta_m.png", "_frontier.png")) for name in written)
