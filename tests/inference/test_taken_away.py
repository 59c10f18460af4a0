"""A run's model leaves the suite: its logged model loads in a fresh process and
reproduces the run's own test metrics, and the export tool writes ONNX, torch.export and state
dict files whose outputs match it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from benchmarks.tools.export import export
from tests.helpers import ROOT, finished_runs, run_benchmark

pytestmark = pytest.mark.slow

# In a fresh interpreter: load the logged model, rebuild the run's test split from its logged
# config.yaml, evaluate as the run did (one thread, its eval batch size), print the metrics.
EVALUATE = """
import json, sys, tempfile, mlflow, torch, yaml
from benchmarks.cells.logged_network import load_logged_network
from benchmarks.training.evaluation import evaluate
from datasets.registry import dataset_from_config
uri, run_id = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
mlflow.set_tracking_uri(uri)
model, _ = load_logged_network(uri, run_id)
config = yaml.safe_load(open(mlflow.artifacts.download_artifacts(
    run_id=run_id, artifact_path="config.yaml", dst_path=tempfile.mkdtemp())))
bundle = dataset_from_config(config["dataset"])
metrics = evaluate(model, bundle.splits["test"], bundle.tasks, torch.device("cpu"),
                   config["protocol"]["eval_batch_size"])
print(json.dumps({"type": type(model).__name__, "metrics": metrics}))
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("taken-away")
    result = run_benchmark(
        tmp, "method=channel_magnitude,magnitude", "sparsity=0.5", "workers=1", multirun=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _, runs = finished_runs(tmp)
    return tmp, {r.data.tags["method"]: r for r in runs}


@pytest.mark.parametrize("method", ["dense", "magnitude", "channel_magnitude"])
def test_logged_model_reproduces_the_runs_test_metrics_in_a_fresh_process(store, method):
    tmp, runs = store
    run = runs[method]
    uri = f"sqlite:///{tmp}/mlflow.db"
    done = subprocess.run(
        [sys.executable, "-c", EVALUATE, uri, run.info.run_id],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["type"] == "MultiTaskNet"
    logged = {k[len("test/") :]: v for k, v in run.data.metrics.items() if k.startswith("test/")}
    assert loaded["metrics"] == pytest.approx(logged, rel=1e-6, abs=1e-6)


def test_channel_pruned_runs_are_stored_smaller_and_masked_runs_also_sparse(store):
    tmp, runs = store
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    size = {m: r.data.metrics["inference/state_dict_mb"] for m, r in runs.items()}
    assert size["channel_magnitude"] < 0.6 * size["dense"]
    assert size["magnitude"] == pytest.approx(size["dense"], rel=0.01)
    sparse = {a.path for a in client.list_artifacts(runs["magnitude"].info.run_id, "sparse")}
    assert sparse == {"sparse/state_dict.pt"}
    assert not client.list_artifacts(runs["channel_magnitude"].info.run_id, "sparse")
    kernel = {m: r.data.tags["inference/kernel"] for m, r in runs.items()}
    assert kernel == {
        "dense": "none (dense model)",
        "magnitude": "none (masks on dense kernels)",
        "channel_magnitude": "dense kernels (channels removed)",
    }


@pytest.mark.parametrize("fmt", ["onnx", "torch_export", "state_dict"])
def test_export_matches_the_pytorch_outputs(store, fmt, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxscript")
    tmp, runs = store
    out = tmp_path / ("model.pt2" if fmt == "torch_export" else f"model.{fmt}")
    difference = export(
        runs["channel_magnitude"].info.run_id, fmt, out, f"sqlite:///{tmp}/mlflow.db"
    )
    assert out.stat().st_size > 0
    if fmt == "onnx" and difference is None:
        pytest.skip("onnxruntime is not installed: the ONNX file was written but not checked")
    assert difference is not None and difference < 1e-4
