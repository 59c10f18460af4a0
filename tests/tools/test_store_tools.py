"""The tools that read a finished store, run in this process on the session's store
(``finished_store`` in conftest): export, the per-task mask analysis and the store comparison.
A fresh process loading the logged model, and ONNX, are the slow ``tests/inference``."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmarks.reporting import leaderboard
from benchmarks.tools import compare_runs, export, task_masks
from benchmarks.tracking.store import Tracker
from methods.masks import prunable_parameters
from tests.helpers import store_runs


def test_exported_state_dict_rebuilds_the_runs_model_with_its_outputs(finished_store, tmp_path):
    run = finished_store.runs["channel_magnitude"]
    out = tmp_path / "model.pt"
    store = ["--tracking-uri", finished_store.uri]
    code = export.main([run.info.run_id, "--format", "state_dict", "--out", str(out), *store])
    assert code == 0 and out.is_file()
    model, _ = export.load_run_model(run.info.run_id, finished_store.uri)
    weights = torch.load(out, weights_only=True)
    assert weights.keys() == model.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    dense = export.load_run_model(finished_store.runs["dense"].info.run_id, finished_store.uri)[0]
    removed = sum(p.numel() for p in prunable_parameters(dense).values()) - sum(
        weights[n].numel() for n in prunable_parameters(model)
    )
    assert removed > 0  # channels removed, not zeroed: the file holds the smaller tensors
    assert (
        export.export(run.info.run_id, "state_dict", tmp_path / "again.pt", finished_store.uri) == 0
    )


def test_torch_export_needs_a_pt2_file(finished_store, tmp_path):
    run = finished_store.runs["dense"]
    with pytest.raises(SystemExit, match=r"torch.export programs are \.pt2 files"):
        out = tmp_path / "m.onnx"
        store = ["--tracking-uri", finished_store.uri]
        export.main([run.info.run_id, "--format", "torch_export", "--out", str(out), *store])


def test_task_mask_analysis_is_the_iou_of_the_runs_own_task_masks(finished_store, tmp_path):
    run = finished_store.runs["disparse_static"]
    code = task_masks.main(
        [run.info.run_id, "--tracking-uri", finished_store.uri, "--out", str(tmp_path)]
    )
    assert code == 0
    frame = pd.read_csv(tmp_path / run.info.run_id / "task_mask_iou.csv")
    state = Tracker(finished_store.uri, "mtl-sparse-bench").download_torch(
        run.info.run_id, "analysis/task_masks.pt", "cpu"
    )
    seg, normal = state["task_masks"]["seg"], state["task_masks"]["normal"]
    for row in frame.to_dict("records"):
        a, b = seg[row["layer"]].bool(), normal[row["layer"]].bool()
        assert row["iou"] == pytest.approx(float((a & b).sum() / (a | b).sum()))
    assert set(frame["layer"]) == {n for n, o in state["owners"].items() if o == "shared"}


def test_task_mask_analysis_of_a_run_without_task_masks_says_which_runs_have_them(
    finished_store, tmp_path, capsys
):
    run = finished_store.runs["channel_magnitude"]
    arguments = [run.info.run_id, "--tracking-uri", finished_store.uri, "--out", str(tmp_path)]
    assert task_masks.main(arguments) == 2
    assert "only methods that select per task (disparse_*) log it" in capsys.readouterr().err


def test_a_store_compared_with_itself_is_identical_run_by_run(finished_store, capsys):
    assert compare_runs.main([finished_store.uri, finished_store.uri]) == 0
    count = len(finished_store.runs)
    summary = f"identical in every test metric and sparsity: {count}/{count}"
    assert summary in capsys.readouterr().out


def copied_store(finished_store, tmp_path) -> str:
    """A copy of the session's store (its database; artifacts stay where they are) to change."""
    shutil.copy(finished_store.folder / "mlflow.db", tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path}/mlflow.db"


def test_export_of_a_mistyped_store_names_it_and_creates_nothing(finished_store, tmp_path):
    run_id = finished_store.runs["dense"].info.run_id
    missing = tmp_path / "typo" / "mlflow.db"
    with pytest.raises(SystemExit, match=f"no MLflow store at sqlite:///{missing}"):
        out = str(tmp_path / "m.pt")
        store = ["--tracking-uri", f"sqlite:///{missing}"]
        export.main([run_id, "--format", "state_dict", "--out", out, *store])
    assert not missing.parent.exists()


def test_export_to_a_folder_is_refused_before_loading_anything(finished_store, tmp_path):
    run_id = finished_store.runs["dense"].info.run_id
    store = ["--tracking-uri", finished_store.uri]
    with pytest.raises(SystemExit, match="is a folder; give a file name"):
        export.main([run_id, "--format", "state_dict", "--out", str(tmp_path), *store])


def test_export_under_a_read_only_folder_is_refused(finished_store, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: nothing to refuse
        pytest.skip("running as root: a read-only folder is still writable")
    run_id = finished_store.runs["dense"].info.run_id
    store = ["--tracking-uri", finished_store.uri]
    with pytest.raises(SystemExit, match="cannot create files under"):
        export.main([run_id, "--format", "state_dict", "--out", str(locked / "m.pt"), *store])


@pytest.mark.parametrize("status", ["KILLED", "FAILED"])
def test_a_run_that_did_not_finish_is_exported_only_when_asked(finished_store, tmp_path, status):
    uri = copied_store(finished_store, tmp_path)
    run_id = finished_store.runs["dense"].info.run_id
    MlflowClient(uri).set_terminated(run_id, status)
    out = tmp_path / "m.pt"
    arguments = [run_id, "--format", "state_dict", "--out", str(out), "--tracking-uri", uri]
    with pytest.raises(SystemExit, match=f"run {run_id} is {status}, not FINISHED"):
        export.main(arguments)
    assert not out.exists()
    assert export.main([*arguments, "--allow-unfinished"]) == 0 and out.is_file()


def test_a_failed_export_leaves_the_previous_file_whole(finished_store, tmp_path, monkeypatch):
    out = tmp_path / "model.pt"
    out.write_bytes(b"the previous export")

    def write_half_then_fail(model, x, path):
        path.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(export.EXPORTERS, "state_dict", write_half_then_fail)
    run_id = finished_store.runs["dense"].info.run_id
    with pytest.raises(OSError, match="No space left"):
        export.export(run_id, "state_dict", out, finished_store.uri)
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # nothing half-written


def test_a_damaged_model_file_is_named_as_such(finished_store):
    """Every logged model file of the session's store cut short, then put back."""
    run = finished_store.runs["dense"]
    files = {p: p.read_bytes() for p in finished_store.folder.rglob("weights.pt")}
    assert files
    try:
        for path, content in files.items():
            path.write_bytes(content[:1000])
        with pytest.raises(SystemExit, match="cannot be read .* they are damaged"):
            export.load_run_model(run.info.run_id, finished_store.uri)
    finally:
        for path, content in files.items():
            path.write_bytes(content)


@pytest.fixture
def checkout_with_a_smoke_store(finished_store, tmp_path, monkeypatch):
    """A working folder as a fresh checkout has it after the quick start's smoke run: the store
    at smoke/mlflow.db (a copy of the session's: its artifacts stay where they are), no
    mlflow.db, and a committed results/ of the default store."""
    (tmp_path / "smoke").mkdir()
    shutil.copy(finished_store.folder / "mlflow.db", tmp_path / "smoke" / "mlflow.db")
    (tmp_path / "results").mkdir()
    committed = "# Leaderboard\n\nGenerated from sqlite:///mlflow.db (MLflow experiment x).\n"
    (tmp_path / "results" / "leaderboard.md").write_text(committed)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_export_finds_a_smoke_run_without_being_told_the_store(checkout_with_a_smoke_store):
    """Issue 28: the quick start's export of a smoke run looked in ./mlflow.db, failed after 34 s
    and left an empty mlflow.db behind."""
    folder = checkout_with_a_smoke_store
    run_id = next(iter(store_runs(f"sqlite:///{folder}/smoke/mlflow.db"))).info.run_id
    assert export.main([run_id, "--format", "state_dict", "--out", "m.pt"]) == 0
    assert (folder / "m.pt").is_file() and not (folder / "mlflow.db").exists()
    with pytest.raises(SystemExit, match="no run 0123abcd in sqlite:///smoke/mlflow.db; pass"):
        export.main(["0123abcd", "--format", "state_dict", "--out", "m.pt"])
    assert not (folder / "mlflow.db").exists()


def test_the_leaderboard_of_the_smoke_store_leaves_the_committed_results_alone(
    checkout_with_a_smoke_store,
):
    folder = checkout_with_a_smoke_store
    committed = (folder / "results" / "leaderboard.md").read_text()
    assert leaderboard.main(["--tracking-uri", "sqlite:///smoke/mlflow.db"]) == 0
    assert (folder / "smoke" / "leaderboard.md").is_file()  # the smoke store's own folder
    assert sorted(p.name for p in (folder / "results").iterdir()) == ["leaderboard.md"]
    assert (folder / "results" / "leaderboard.md").read_text() == committed
    named = ["--tracking-uri", "sqlite:///smoke/mlflow.db", "--results-dir", "results"]
    assert leaderboard.main(named) == 2  # another store's leaderboard is there: refused
    assert (folder / "results" / "leaderboard.md").read_text() == committed
    assert leaderboard.main([*named, "--replace"]) == 0
    assert "sqlite:///smoke/mlflow.db" in (folder / "results" / "leaderboard.md").read_text()
