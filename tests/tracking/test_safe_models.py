"""A run's logged model loads without running anything from the store (issue 29, S1): weights
read with ``weights_only=True``, the architecture rebuilt by the installed registries, payloads
planted in the model folder (a pickle in place of the weights or beside them, a ``code/`` folder
named by an edited ``MLmodel``) are refused or ignored, and the pyfunc flavour predicts."""

from __future__ import annotations

import pickle
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from benchmarks.cells.logged_network import load_logged_network
from benchmarks.tools import export
from benchmarks.tracking.models import NETWORK_FOLDER, WEIGHTS


class Payload:
    """Unpickling this creates ``marker``: how a planted pickle would run code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def model_folder(store, method: str) -> Path:
    """The on-disk folder of a run's logged model (where MLmodel is)."""
    run = store.runs[method]
    (logged,) = MlflowClient(store.uri).search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
    )
    return Path(logged.artifact_location.removeprefix("file://"))


@pytest.fixture
def planted(finished_store):
    """The dense run's model folder; every file the test adds or changes is put back after."""
    folder = model_folder(finished_store, "dense")
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    yield folder
    for path in folder.rglob("*"):
        if path.is_file() and path not in before:
            path.unlink()
    for path, content in before.items():
        path.write_bytes(content)


def test_a_channel_pruned_model_is_rebuilt_at_its_size_with_the_runs_weights(finished_store):
    run_id = finished_store.runs["channel_magnitude"].info.run_id
    model, shape = load_logged_network(finished_store.uri, run_id)
    checkpoint = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="checkpoint/model.pt", tracking_uri=finished_store.uri
    )
    trained = torch.load(checkpoint, weights_only=True)["model"]
    assert model.state_dict().keys() == trained.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in trained.items())
    dense, _ = load_logged_network(finished_store.uri, finished_store.runs["dense"].info.run_id)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in dense.parameters())
    params = finished_store.runs["channel_magnitude"].data.params
    assert shape == (3, int(params["dataset.height"]), int(params["dataset.width"]))


def test_the_pyfunc_flavour_predicts_every_tasks_output(finished_store):
    run_id = finished_store.runs["channel_magnitude"].info.run_id
    model, shape = load_logged_network(finished_store.uri, run_id)
    images = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    model_uri = finished_store.runs["channel_magnitude"].data.tags["model_uri"]
    mlflow.set_tracking_uri(finished_store.uri)
    try:
        predicted = mlflow.pyfunc.load_model(model_uri).predict(images)
    finally:  # it also sets $MLFLOW_TRACKING_URI, which later tests' tools would read
        mlflow.set_tracking_uri(None)
    with torch.no_grad():
        expected = model(torch.from_numpy(images))
    assert predicted.keys() == expected.keys()
    assert all(np.array_equal(predicted[k], v.numpy()) for k, v in expected.items())


def test_a_pickle_planted_as_the_weights_is_refused_without_running(
    finished_store, planted, tmp_path
):
    marker = tmp_path / "payload-ran"
    (planted / "data" / NETWORK_FOLDER / WEIGHTS).write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(SystemExit, match="cannot be read .* they are damaged"):
        export.load_run_model(finished_store.runs["dense"].info.run_id, finished_store.uri)
    assert not marker.exists()


def test_a_pickled_model_and_code_planted_beside_the_weights_are_never_loaded(
    finished_store, planted, tmp_path
):
    """Both routes of the issue: a pickle where MLflow's PyTorch flavour looks (``data/model.pth``)
    and a ``code/`` module that its ``pickle_module_info.txt`` names; the export still writes the
    run's own network."""
    marker = tmp_path / "payload-ran"
    (planted / "data" / "model.pth").write_bytes(pickle.dumps(Payload(marker)))
    (planted / "code").mkdir(exist_ok=True)  # the project code that travels with the model
    (planted / "code" / "planted_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (planted / "data" / "pickle_module_info.txt").write_text("planted_module")
    mlmodel = yaml.safe_load((planted / "MLmodel").read_text())
    mlmodel["flavors"]["pytorch"] = {
        "code": "code",
        "model_data": "data",
        "pytorch_version": str(torch.__version__),
    }
    (planted / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    run_id = finished_store.runs["dense"].info.run_id
    out = tmp_path / "model.pt"
    assert (
        export.main(
            [
                run_id,
                "--format",
                "state_dict",
                "--out",
                str(out),
                "--tracking-uri",
                finished_store.uri,
            ]
        )
        == 0
    )
    assert not marker.exists()
    model, _ = load_logged_network(finished_store.uri, run_id)
    weights = torch.load(out, weights_only=True)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
