"""One MLflow run while its cell runs: buffered metrics, tags, artifacts and the heartbeat."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from benchmarks.tracking.schema import HEARTBEAT, MODEL_URI

MAX_BATCH = 100  # MLflow's per-request limit for params / metrics in log_batch
FLUSH_EVERY_S = 30.0  # buffered metrics go to the store at least this often
HEARTBEAT_EVERY_S = 30.0  # a running cell renews its heartbeat at least this often
BEATS_PER_STALE_PERIOD = 4  # beats missed before another host takes a run for an orphan


def heartbeat_period(stale_after_s: float) -> float:
    """Seconds between beats: often enough that a live run is never older than
    ``stale_after_s`` (``tracking.stale_after_s``) even when a beat or two fails."""
    return min(HEARTBEAT_EVERY_S, stale_after_s / BEATS_PER_STALE_PERIOD)


def now() -> str:
    """A heartbeat's value: seconds since the epoch."""
    return f"{time.time():.0f}"


def delete_artifacts(client: MlflowClient, run_id: str, folder: str) -> None:
    """Remove a run's artifact ``folder`` (a resume checkpoint nothing will read again); a store
    whose artifacts cannot be deleted keeps it, with a warning."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    location = client.get_run(run_id).info.artifact_uri
    repository = get_artifact_repository(location, tracking_uri=client.tracking_uri)
    try:
        repository.delete_artifacts(folder)
    except (NotImplementedError, OSError) as error:
        logging.getLogger(__name__).warning("run %s: %s/ kept (%s)", run_id, folder, error)


class TrackedRun:
    """Buffered metric logging for one run (one request per flush, not one per value), and a
    heartbeat that a thread renews whatever the cell is doing (waiting for another sweep's
    source model, training it, scoring): other hosts take a run without one for an orphan."""

    def __init__(self, client: MlflowClient, run_id: str, beat_every_s: float = HEARTBEAT_EVERY_S):
        self.client = client
        self.run_id = run_id
        self.beat_every_s = beat_every_s
        self.pending: list[Metric] = []
        self.latest: dict[str, Metric] = {}  # each metric's last value (linked to the model)
        self.logged_params: dict[str, str] = {}
        self.flushed = time.monotonic()
        self._stopped = threading.Event()
        self._heart = threading.Thread(target=self._keep_beating, daemon=True)
        self._heart.start()

    def _keep_beating(self) -> None:
        while not self._stopped.wait(self.beat_every_s):
            try:
                self.client.set_tag(self.run_id, HEARTBEAT, now())
            except Exception:  # a store hiccup: the next beat, or the next flush, tries again
                continue

    def stop_heartbeat(self) -> None:
        """The run ended: no more beats."""
        self._stopped.set()
        self._heart.join(timeout=5.0)

    def params(self, params: Mapping[str, str]) -> None:
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        self.logged_params.update((p.key, p.value) for p in items)
        for start in range(0, len(items), MAX_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + MAX_BATCH])

    def metrics(self, values: Mapping[str, float], step: int) -> None:
        stamp = int(time.time() * 1000)
        metrics = [Metric(k, float(v), stamp, step) for k, v in values.items()]
        self.pending.extend(metrics)
        self.latest.update((m.key, m) for m in metrics)
        if len(self.pending) >= 500 or time.monotonic() - self.flushed > FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Send the buffered metrics and renew the run's heartbeat."""
        for start in range(0, len(self.pending), MAX_BATCH):
            self.client.log_batch(self.run_id, metrics=self.pending[start : start + MAX_BATCH])
        self.pending = []
        self.client.set_tag(self.run_id, HEARTBEAT, now())
        self.flushed = time.monotonic()

    def tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def artifact(self, local_path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def artifact_torch(self, state: Any, path: tuple[str, str]) -> None:
        """``torch.save`` of ``state`` as artifact ``folder/file`` (overwritten if present)."""
        import torch

        folder, filename = path
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / filename
            torch.save(state, local)
            self.artifact(local, folder)

    def logged_model(
        self, model: Any, description: Mapping[str, Any], image_shape: tuple[int, ...], name: str
    ) -> None:
        """The run's MLflow model ``name``: weights and description, with the run's params and
        final metrics linked (``benchmarks.tracking.models``); its URI in the ``model_uri`` tag."""
        from benchmarks.tracking.models import log_model

        self.flush()
        model_id = log_model(
            self.client,
            self.run_id,
            model,
            description,
            image_shape,
            name,
            self.logged_params,
            list(self.latest.values()),
        )
        self.tags({MODEL_URI: f"models:/{model_id}"})

    def dataset_input(self, name: str, digest: str, root: str | None) -> None:
        """The run's data as an MLflow dataset input (the runs table's Dataset column): a folder
        on disk for a real dataset, this project's code for a generated one."""
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        with warnings.catch_warnings():  # a local path resolves to two equal source kinds
            warnings.simplefilter("ignore", UserWarning)
            source = (
                resolve_dataset_source(str(root))
                if root
                else CodeDatasetSource({"mlflow.source.name": f"datasets/{name}"})
            )
        dataset = MetaDataset(source=source, name=name, digest=digest)
        context = InputTag(MLFLOW_DATASET_CONTEXT, "train")
        inputs = [DatasetInput(dataset._to_mlflow_entity(), [context])]
        try:
            self.client.log_inputs(self.run_id, inputs)
        except MlflowException as error:
            # The store keeps one row per (experiment, name, digest): two cells of a new dataset
            # starting together (parallel workers, hosts) both find none and both insert it, and
            # the second insert fails. Once more finds the row and links it to this run.
            log = logging.getLogger(__name__)
            log.info("run %s: dataset input retried after %s", self.run_id, error.error_code)
            self.client.log_inputs(self.run_id, inputs)

    def delete_artifacts(self, folder: str) -> None:
        """Remove the run's artifact ``folder`` (``delete_artifacts``)."""
        delete_artifacts(self.client, self.run_id, folder)

    def artifact_text(self, text: str, filename: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / filename
            path.write_text(text)
            self.artifact(path)
