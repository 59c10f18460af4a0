"""MLflow as its users know it (issue 28): each run's logged model is named after its cell with
the run's params and final metrics linked, loads with ``mlflow.pyfunc`` in a Python without this
checkout, the run carries MLflow's own source tags and its data as a dataset input, and the
experiment opens in the model-training view."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from benchmarks.tracking.models import model_name
from benchmarks.tracking.versions import _git


def test_model_names_carry_the_cell_and_only_characters_mlflow_accepts():
    assert model_name("snip", 0.9, 0) == "snip-0p9-seed0"
    assert model_name("cross_stitch [init=single_task]", 0.0, 2) == (
        "cross_stitch[init=single_task]-0-seed2"
    )
    assert model_name("a/b:c", 0.95, 1) == "a_b_c-0p95-seed1"


def test_the_logged_model_is_named_after_its_cell_with_its_params_and_metrics(finished_store):
    client = MlflowClient(finished_store.uri)
    run = finished_store.runs["disparse_static"]
    (model,) = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
    )
    assert model.name == "disparse_static-0p5-seed0"
    (output,) = client.get_run(run.info.run_id).outputs.model_outputs  # the UI's Models column
    assert output.model_id == model.model_id
    assert run.data.tags["model_uri"] == f"models:/{model.model_id}"
    assert model.params["method.name"] == "disparse_static"
    assert model.params["sparsity"] == run.data.params["sparsity"]
    linked = {m.key: m.value for m in model.metrics}
    test_metrics = {k: v for k, v in run.data.metrics.items() if k.startswith("test/")}
    assert test_metrics and all(linked[k] == v for k, v in test_metrics.items())
    assert linked["sparsity/overall"] == run.data.metrics["sparsity/overall"]
    history = client.get_metric_history(run.info.run_id, "test/seg/mIoU")
    assert len(history) == 1, "linking the metrics to the model must not add to the run's history"


def test_runs_carry_mlflow_source_tags_and_their_dataset(finished_store):
    client = MlflowClient(finished_store.uri)
    run = client.get_run(finished_store.runs["dense"].info.run_id)
    commit = run.data.tags["mlflow.source.git.commit"]  # the full hash of the checkout
    assert len(commit) == 40 and _git("cat-file", "-t", commit) == "commit"
    assert commit.startswith(run.data.tags["code_version"].removesuffix("-dirty"))
    assert run.data.tags["mlflow.source.name"] == "benchmarks.run"
    (given,) = run.inputs.dataset_inputs
    assert given.dataset.name == "synthetic" and len(given.dataset.digest) == 12
    assert [(t.key, t.value) for t in given.tags] == [("mlflow.data.context", "train")]
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.slow
def test_pyfunc_loads_and_predicts_in_a_python_without_this_checkout(finished_store, tmp_path):
    """The interpreter runs isolated (-I -S) with only site-packages on its path, so neither this
    checkout nor the editable install's finder is importable: the code comes with the model."""
    run = finished_store.runs["channel_magnitude"]
    height, width = int(run.data.params["dataset.height"]), int(run.data.params["dataset.width"])
    images = np.random.default_rng(0).standard_normal((2, 3, height, width)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.append({sysconfig.get_paths()["purelib"]!r})
        try:
            import methods
            raise SystemExit("the checkout is importable: the test would prove nothing")
        except ImportError:
            pass
        import mlflow, numpy as np
        mlflow.set_tracking_uri({finished_store.uri!r})
        model = mlflow.pyfunc.load_model({run.data.tags["model_uri"]!r})
        out = model.predict(np.load("images.npy"))
        np.savez("predicted.npz", **out)
        print(sorted(out), sys.modules["methods"].__file__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "/code/methods/" in done.stdout, "methods must come from the model's code/ folder"
    from benchmarks.cells.logged_network import load_logged_network

    network, _ = load_logged_network(finished_store.uri, run.info.run_id)
    import torch

    with torch.no_grad():
        expected = network(torch.from_numpy(images))
    predicted = np.load(tmp_path / "predicted.npz")
    assert sorted(predicted.files) == sorted(expected)
    assert all(np.allclose(predicted[k], v.numpy(), atol=1e-6) for k, v in expected.items())


def test_delta_m_and_each_tasks_change_are_on_the_runs_and_sort_the_runs_table(finished_store):
    """The sweep's leaderboard wrote them; a second leaderboard has nothing left to write."""
    import pandas as pd

    from benchmarks.reporting.leaderboard import run_summaries
    from benchmarks.reporting.settings import Comparison, split_settings, with_shared_cells
    from benchmarks.tracking.collect import collect_runs, experiment_id
    from benchmarks.tracking.summaries import write_run_summaries

    client = MlflowClient(finished_store.uri)
    experiment = finished_store.runs["dense"].info.experiment_id
    ordered = client.search_runs([experiment], order_by=["metrics.delta_m DESC"])
    by_method = {r.data.tags["method"]: r.data.metrics for r in ordered}
    assert by_method["dense"]["delta_m"] == 0.0
    assert by_method["dense"]["delta_m/seg"] == 0.0
    table = pd.read_csv(next(finished_store.results.glob("synthetic*_smoke.csv")))
    row = table[table["method"] == "disparse_static"].iloc[0]
    for key in ("delta_m", "delta_m/seg", "delta_m/normal"):
        assert by_method["disparse_static"][key] == pytest.approx(row[f"{key}:mean"], rel=1e-5)
    seg, normal = (
        by_method["disparse_static"]["delta_m/seg"],
        by_method["disparse_static"]["delta_m/normal"],
    )
    assert by_method["disparse_static"]["delta_m"] == pytest.approx((seg + normal) / 2)
    deltas = [r.data.metrics["delta_m"] for r in ordered if "delta_m" in r.data.metrics]
    assert deltas == sorted(deltas, reverse=True)

    frame = with_shared_cells(collect_runs(finished_store.uri, "mtl-sparse-bench"))
    summaries = run_summaries(split_settings(frame, Comparison()), Comparison())
    uri = finished_store.uri
    assert write_run_summaries(uri, experiment_id(uri, "mtl-sparse-bench"), summaries) == 0
