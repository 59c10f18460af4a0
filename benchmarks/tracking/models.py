"""A run's final model as an MLflow PyTorch model (the Models tab, ``runs:/<id>/model``).

Pickled (MLflow's ``serialization_format="pickle"``), not traced: ``mlflow.pytorch.load_model``
in any Python process of the same environment returns the network itself, for any batch size and
resolution, with a channel-pruned network at its smaller size. MLflow's pyfunc serving expects one
output tensor, while these networks return a dict of task outputs, so the input example is stored
but not served, and MLflow's serving check of it (a warning for dict outputs) is silenced.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
from collections.abc import Iterator

import mlflow
import numpy as np
import torch
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from benchmarks.tracking.schema import LOGGED_MODEL

REQUIREMENTS = ("torch", "torchvision", "numpy")
QUIET = ("mlflow.pytorch", "mlflow.models.model", "mlflow.utils.requirements_utils")


def requirements() -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in REQUIREMENTS]


@contextlib.contextmanager
def _quiet_store(uri: str) -> Iterator[None]:
    """MLflow's model logging resolves the store through its global tracking URI: point it at
    ``uri`` for the call, then restore it (and the loggers it warns through)."""
    previous = mlflow.get_tracking_uri()
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


@torch.no_grad()
def log_pytorch_model(
    client: MlflowClient, run_id: str, model: torch.nn.Module, image_shape: tuple[int, ...]
) -> None:
    """Log ``model`` (in eval mode, from the CPU) with a signature and a one-image input example,
    as a logged model of the run's MLflow experiment whose source is the run."""
    model = model.eval()
    device = next(model.parameters()).device
    example = np.zeros((1, *image_shape), dtype=np.float32)
    outputs = {k: v.cpu().numpy() for k, v in model(torch.from_numpy(example).to(device)).items()}
    experiment = client.get_run(run_id).info.experiment_id
    logged = client.create_logged_model(experiment, name=LOGGED_MODEL, source_run_id=run_id)
    with _quiet_store(client.tracking_uri):
        mlflow.pytorch.log_model(
            model.cpu(),
            name=LOGGED_MODEL,
            run_id=run_id,
            model_id=logged.model_id,
            signature=infer_signature(example, outputs),
            input_example=example,
            serialization_format="pickle",
            pip_requirements=requirements(),
        )
    model.to(device)


class NoLoggedModelError(LookupError):
    """The run has no MLflow model (runs from before models were logged, or another store)."""


class DamagedModelError(RuntimeError):
    """The run's model files are there but cannot be read (truncated, replaced)."""


def load_logged_model(uri: str, run_id: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The run's logged network in eval mode, on the CPU, and the image shape (C, H, W) of its
    input example."""
    model_uri = f"runs:/{run_id}/{LOGGED_MODEL}"
    with _quiet_store(uri):
        try:
            info = mlflow.models.get_model_info(model_uri)
        except (mlflow.exceptions.MlflowException, OSError) as error:
            raise NoLoggedModelError(str(error)) from None
        shape = tuple(info.signature.inputs.inputs[0].shape[1:])
        try:
            return mlflow.pytorch.load_model(model_uri, map_location="cpu").eval(), shape
        except (RuntimeError, OSError, EOFError, ValueError) as error:  # torch's reader errors
            raise DamagedModelError(f"{type(error).__name__}: {str(error)[:300]}") from None
