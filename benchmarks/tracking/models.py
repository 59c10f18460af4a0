"""A run's final model as an MLflow logged model, named after its cell (``snip-0p9-seed0``), with
the run's final metrics and its cell's options linked to it, that the suite loads without running
anything from the store.

The model folder holds two files the suite reads, under ``data/network/``: ``weights.pt``, a
``torch.save`` of the state dict (tensors only: read back with ``torch.load(weights_only=True)``,
which unpickles tensors and plain containers and nothing else), and ``network.json``, what the
registries rebuild the architecture from (the run's cell, its tasks, the image shape; a
channel-pruned network's widths come from the weights' shapes). ``read_logged_model`` reads those
two files and nothing else in the folder, with the installed project's code, so files planted
beside them (a pickled model, an edited ``MLmodel``, the ``code/`` folder) are never loaded.

For MLflow's own route, ``mlflow.pyfunc.load_model(...).predict(images)`` gives ``{task:
array}``: the ``MLmodel`` file's pyfunc flavour names a loader module of this package
(``PYFUNC_LOADER``), and a copy of the project's code travels in ``code/`` (MLflow's
``code_paths``) with the project's requirements, so the model loads in a Python without this
checkout. MLflow's loader trusts the ``MLmodel`` file and runs that code: use it on stores only
you write.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import logging
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.entities import LoggedModelOutput, Metric
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from packaging.requirements import Requirement

from benchmarks.tracking.access import open_client
from benchmarks.tracking.schema import LOGGED_MODEL

PROJECT = "mtl-sparse-bench"
PACKAGES = ("benchmarks", "methods", "datasets", "core")  # the code a model travels with
NOT_SHIPPED = ("__pycache__", "*.pyc", "conf")  # conf: Hydra's configs, not needed to load
FORBIDDEN_IN_NAMES = "/:.%\"'"  # characters MLflow refuses in a logged model's name
LINKED_METRICS = ("test/", "sparsity/overall", "model/", "inference/", "budget/")
QUIET = ("mlflow.pyfunc", "mlflow.models.model", "mlflow.utils.requirements_utils")
NETWORK_FOLDER = "network"  # under the model's data/ folder
WEIGHTS, DESCRIPTION = "weights.pt", "network.json"
OLDER = "models logged before weights.pt and network.json were stored have none"
PYFUNC_LOADER = "benchmarks.cells.logged_network"  # defines _load_pyfunc(path)


@functools.cache
def requirements() -> tuple[str, ...]:
    """The project's dependencies (not its extras) pinned at the installed versions: what its
    code needs to load a model."""
    pinned = []
    for line in importlib.metadata.requires(PROJECT) or []:
        requirement = Requirement(line)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        try:
            pinned.append(f"{requirement.name}=={importlib.metadata.version(requirement.name)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(line)
    return tuple(pinned)


def model_name(method: str, sparsity: float, seed: int) -> str:
    """The logged model's name: the cell's method, sparsity and seed (``snip-0p9-seed0``)."""
    text = f"{method}-{sparsity:g}-seed{seed}".replace(" ", "")
    return "".join("p" if c == "." else "_" if c in FORBIDDEN_IN_NAMES else c for c in text)


def _copy_project_code(folder: Path) -> list[str]:
    """This project's packages copied into ``folder`` (for ``code_paths``); their paths."""
    root = Path(__file__).resolve().parents[2]
    ignore = shutil.ignore_patterns(*NOT_SHIPPED)
    for package in PACKAGES:
        shutil.copytree(root / package, folder / package, ignore=ignore)
    return [str(folder / package) for package in PACKAGES]


@contextlib.contextmanager
def _quiet_store(uri: str) -> Iterator[None]:
    """MLflow's model logging resolves the store through its global tracking URI: point it at
    ``uri`` for the call, then restore it (and the loggers it warns through). An unset URI is
    unset again: MLflow mirrors the global URI into $MLFLOW_TRACKING_URI, which would otherwise
    name this store to every later command of the process."""
    previous = mlflow.get_tracking_uri() if mlflow.tracking.is_tracking_uri_set() else None
    levels = {name: logging.getLogger(name).level for name in QUIET}
    mlflow.set_tracking_uri(uri)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def write_network_files(
    folder: Path, state: Mapping[str, torch.Tensor], description: Mapping[str, Any]
) -> None:
    """The two files a logged model is rebuilt from, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state), folder / WEIGHTS)
    (folder / DESCRIPTION).write_text(json.dumps(description, indent=1, sort_keys=True))


def read_network_files(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(description, state)`` from ``folder``; nothing in them can run code.

    Raises ``DamagedModelError`` when a file is missing, cut short, or holds anything but
    tensors (a planted pickle)."""
    try:
        description = json.loads((folder / DESCRIPTION).read_text())
        state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise DamagedModelError(f"{type(error).__name__}: {str(error)[:300]}") from None
    tensors = isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    if not isinstance(description, dict) or not tensors:
        raise DamagedModelError(f"{folder.name} does not hold a state dict and a description")
    return description, state


@torch.no_grad()
def log_model(
    client: MlflowClient,
    run_id: str,
    model: torch.nn.Module,
    description: Mapping[str, Any],
    image_shape: tuple[int, ...],
    name: str,
    params: Mapping[str, str],
    metrics: Sequence[Metric],
) -> str:
    """Log ``model`` (weights and ``description``) with a signature and a one-image input example
    as logged model ``name`` of the run, with ``params`` and the run's ``metrics`` linked to it
    (re-logged with its id at their own time and step, so the run's history gains nothing).
    Returns the model's id."""
    model = model.eval()
    device = next(model.parameters()).device
    example = np.zeros((1, *image_shape), dtype=np.float32)
    outputs = {k: v.cpu().numpy() for k, v in model(torch.from_numpy(example).to(device)).items()}
    experiment = client.get_run(run_id).info.experiment_id
    logged = client.create_logged_model(
        experiment, name=name, source_run_id=run_id, params=dict(params)
    )
    with tempfile.TemporaryDirectory() as tmp:
        network = Path(tmp) / NETWORK_FOLDER
        write_network_files(
            network, {k: v.cpu() for k, v in model.state_dict().items()}, description
        )
        saved = Path(tmp) / LOGGED_MODEL
        with _quiet_store(client.tracking_uri):
            mlflow.pyfunc.save_model(
                saved,
                loader_module=PYFUNC_LOADER,
                data_path=str(network),
                code_paths=_copy_project_code(Path(tmp) / "project"),
                signature=infer_signature(example, outputs),
                input_example=example,
                pip_requirements=list(requirements()),
            )
        client.log_model_artifacts(logged.model_id, str(saved))
    linked = [
        Metric(m.key, m.value, m.timestamp, m.step, model_id=logged.model_id)
        for m in metrics
        if m.key.startswith(LINKED_METRICS)
    ]
    for start in range(0, len(linked), 1000):
        client.log_batch(run_id, metrics=linked[start : start + 1000])
    client.finalize_logged_model(logged.model_id, "READY")
    step = max((m.step for m in metrics), default=0)
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step)])  # the run's Models
    return logged.model_id


def logged_model_location(client: MlflowClient, run_id: str) -> str:
    """Where the run's logged model's files are (``runs:/<id>/model`` for runs logged before
    models were named after their cell)."""
    experiment = client.get_run(run_id).info.experiment_id
    found = client.search_logged_models(
        experiment_ids=[experiment], filter_string=f"source_run_id = '{run_id}'"
    )
    ready = [m for m in found if str(m.status) == "READY"] or list(found)
    return ready[0].artifact_location if ready else f"runs:/{run_id}/{LOGGED_MODEL}"


class NoLoggedModelError(LookupError):
    """The run has no model in this format (runs from before it, or another store)."""


class DamagedModelError(RuntimeError):
    """The run's model files are there but cannot be read (truncated, replaced)."""


def read_logged_model(uri: str, run_id: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(description, state)`` of the run's logged model: its two network files only."""
    try:
        location = logged_model_location(open_client(uri), run_id)
    except mlflow.exceptions.MlflowException as error:
        raise NoLoggedModelError(f"{str(error)[:300]} ({OLDER})") from None
    source = f"{location}/data/{NETWORK_FOLDER}"
    with _quiet_store(uri), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / NETWORK_FOLDER
        folder.mkdir()
        for name in (DESCRIPTION, WEIGHTS):
            try:
                local = mlflow.artifacts.download_artifacts(f"{source}/{name}", dst_path=tmp)
            except (mlflow.exceptions.MlflowException, OSError) as error:
                raise NoLoggedModelError(f"{str(error)[:300]} ({OLDER})") from None
            Path(local).replace(folder / name)
        return read_network_files(folder)
