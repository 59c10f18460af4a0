"""End to end, as a user runs it: smoke sweep into a fresh MLflow store, leaderboard, rerun."""

from __future__ import annotations

import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmarks.cells.resources import CellResources
from benchmarks.reporting.leaderboard import main as leaderboard_main
from benchmarks.reporting.leaderboard import write_leaderboard
from benchmarks.sweep.serial import run_sweep
from benchmarks.tools.task_masks import main as analyze_main
from benchmarks.tracking.store import Tracker
from methods.lifecycle import PruneAtInit
from methods.options import PruningOptions
from methods.registry import METHODS, register_method
from tests.helpers import finished_runs, run_benchmark, smoke_cells

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smoke")
    result = run_benchmark(tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, result


def test_smoke_sweep_logs_every_cell_with_params_metrics_tags_and_artifacts(smoke_store):
    tmp, result = smoke_store
    client, runs = finished_runs(tmp)
    assert len(runs) == len(smoke_cells())
    assert {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        tags = run.data.tags
        for key in (
            "method",
            "dataset",
            "sparsity",
            "seed",
            "cell_id",
            "setting_id",
            "code_fingerprint",
            "code_version",
            "env/python",
            "env/torch",
            "env/cuda",
            "env/cpu",
            "env/gpu",
            "env/packages",
        ):
            assert tags[key]
        assert run.data.params["protocol.name"] == "smoke"
        assert "test/seg/mIoU" in run.data.metrics
        assert "train/loss" in run.data.metrics
        assert "val/normal/mean_angle" in run.data.metrics
        assert abs(run.data.metrics["sparsity/overall"] - float(tags["sparsity"])) < 0.001
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "masks", "checkpoint"} <= artifacts
    dense = [r for r in runs if r.data.tags["method"] == "dense"]
    assert len(dense) == 1  # trained once, reused by every pretrained cell
    pretrained = [r for r in runs if r.data.tags["method"] == "magnitude"]
    assert {r.data.tags["pretrained_run_id"] for r in pretrained} == {dense[0].info.run_id}
    assert f"[1/{len(runs)}] dense" in result.stdout + result.stderr
    analysed = [  # the methods that keep each task's own selection
        r for r in runs if r.data.tags["method"] in ("disparse_static", "disparse_pretrained")
    ]
    for run in analysed:
        files = {a.path for a in client.list_artifacts(run.info.run_id, "analysis")}
        assert "analysis/task_mask_iou.csv" in files
    out = tmp / "analysis"
    run_id = analysed[0].info.run_id
    code = analyze_main([run_id, "--tracking-uri", f"sqlite:///{tmp}/mlflow.db", "--out", str(out)])
    assert code == 0 and (out / run_id / "task_mask_iou.png").stat().st_size > 0


def test_leaderboard_files_are_written_and_regenerated(smoke_store, capsys):
    tmp, result = smoke_store
    results = tmp / "results"
    name = "synthetic_seg+normal_small_cnn_smoke"
    for suffix in (".md", ".csv", "_delta_m.png"):
        assert (results / f"{name}{suffix}").stat().st_size > 0
    assert "| static" in result.stdout and "Δm" in result.stdout
    (results / f"{name}.md").unlink()
    code = leaderboard_main(
        ["--tracking-uri", f"sqlite:///{tmp}/mlflow.db", "--results-dir", str(results)]
    )
    assert code == 0
    text = (results / f"{name}.md").read_text()
    assert "target sparsity 90%" in text and "disparse_static" in text
    assert "seg mIoU ↑" in text and "normal mean_angle ↓" in text
    assert "| architecture | hard_sharing" in text and "| architecture | mtan" in text
    code = leaderboard_main(
        [
            "--tracking-uri",
            f"sqlite:///{tmp}/mlflow.db",
            "--results-dir",
            str(results),
            "--baseline",
            "single_task",
            "--delta-m",
            "main_metric",
        ]
    )
    assert code == 0
    own = (results / f"{name}_vs_single_task_main_metric.md").read_text()
    assert "Δm (main_metric)" in own and "against the single_task baseline" in own
    assert (results / f"{name}_vs_single_task_main_metric_delta_m.png").stat().st_size > 0
    assert "against the dense hard-sharing baseline" in (results / f"{name}.md").read_text()


def test_rerun_skips_every_finished_cell(smoke_store):
    tmp, _ = smoke_store
    before = len(finished_runs(tmp)[1])
    result = run_benchmark(tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"0 ran, {before} skipped" in result.stdout + result.stderr
    assert len(finished_runs(tmp)[1]) == before


def test_multirun_runs_the_grid_and_prints_the_leaderboard_once(tmp_path):
    result = run_benchmark(tmp_path, "method=snip,random", "sparsity=0.9", "seed=0", multirun=True)
    assert result.returncode == 0, result.stderr[-3000:]
    _, runs = finished_runs(tmp_path)
    assert sorted(r.data.tags["method"] for r in runs) == ["random", "snip"]
    assert result.stdout.count("## synthetic") == 1


def test_bad_override_is_a_clear_error(tmp_path):
    result = run_benchmark(tmp_path, "method=snip", "method.budget=layerwise")
    assert result.returncode == 2
    assert "unknown layer budget 'layerwise'" in result.stdout + result.stderr
    result = run_benchmark(tmp_path, "method=snap")  # Hydra lists the method config files
    assert result.returncode != 0
    assert "Could not find 'method/snap'" in result.stderr and "disparse_static" in result.stderr
    result = run_benchmark(tmp_path, "method.name=snap")  # the registry lists registered methods
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "unknown method 'snap'; registered methods: " in output and "snip" in output


class ExplodingPruning(PruneAtInit):
    Options = PruningOptions

    def scores(self, ctx):
        raise RuntimeError("scores exploded")


@pytest.fixture
def exploding_method():
    register_method("exploding")(ExplodingPruning)
    yield "exploding"
    METHODS.remove("exploding")


def test_failed_cell_is_recorded_and_the_sweep_goes_on(tmp_path, exploding_method):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "mtl-sparse-bench")
    env = CellResources(tracker, torch.device("cpu"))
    base = smoke_cells(
        "method=random", "sparsity=0.5", "seed=0", f"dataset.cache_dir={tmp_path}/cache"
    )[0]
    bad = base.with_method({"name": "exploding", "budget": "global"}, 0.5)
    report = run_sweep(env, [bad, base])
    assert report.failed[0][0] == bad.label and "scores exploded" in report.failed[0][1]
    assert report.ran == [base.label]
    _, runs = finished_runs(tmp_path)
    status = {r.data.tags["method"]: r for r in runs}
    assert status["exploding"].info.status == "FAILED"
    assert "scores exploded" in status["exploding"].data.tags["failure_reason"]
    assert status["random"].info.status == "FINISHED"
    board = write_leaderboard(f"sqlite:///{tmp_path}/mlflow.db", "mtl-sparse-bench", tmp_path)
    assert "- exploding sparsity=0.5 seed=0: FAILED: RuntimeError: scores exploded" in board


def test_same_seed_gives_same_masks_and_metrics(tmp_path):
    cells = smoke_cells(
        "method=snip", "sparsity=0.9", "seed=1", f"dataset.cache_dir={tmp_path}/cache"
    )
    metrics = []
    for store in ("a", "b"):
        tracker = Tracker(f"sqlite:///{tmp_path}/{store}.db", "mtl-sparse-bench")
        env = CellResources(tracker, torch.device("cpu"))
        run_sweep(env, cells)
        client, runs = MlflowClient(f"sqlite:///{tmp_path}/{store}.db"), None
        runs = client.search_runs([tracker.experiment_id])
        masks = torch.load(
            tracker.download(runs[0].info.run_id, "masks/masks.pt", str(tmp_path / store)),
            weights_only=True,
        )
        metrics.append(
            ({k: v for k, v in runs[0].data.metrics.items() if k.startswith("test/")}, masks)
        )
    (m_a, masks_a), (m_b, masks_b) = metrics
    assert m_a == m_b
    assert all(torch.equal(masks_a["masks"][n], masks_b["masks"][n]) for n in masks_a["masks"])


def test_best_test_loss_selection_never_reports_a_network_denser_than_the_target(tmp_path):
    cells = smoke_cells(
        "method=gmp",
        "sparsity=0.9",
        "seed=0",
        "protocol.checkpoint_selection=best_test_loss",
        "protocol.selection_every=1",
        f"dataset.cache_dir={tmp_path}/cache",
    )
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "mtl-sparse-bench")
    report = run_sweep(CellResources(tracker, torch.device("cpu")), cells)
    assert not report.failed, report.failed
    _, runs = finished_runs(tmp_path)
    run = runs[0]
    assert run.data.tags["selection"] == "best_test_loss"
    assert abs(run.data.metrics["sparsity/overall"] - 0.9) < 0.001
