"""The MLflow store of one experiment: find a cell's runs, claim a cell, start and end runs,
reap orphans. Every other module reaches MLflow through this package."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from benchmarks.tracking.access import (
    SQLITE,
    STORE_HINT,
    check_reachable,
    creation_lock,
    default_artifact_location,
    open_client,
)
from benchmarks.tracking.claims import CellClaims, ended_if_stopped
from benchmarks.tracking.client import StoreClient
from benchmarks.tracking.keys import CellKey, Reuse
from benchmarks.tracking.run_log import TrackedRun, heartbeat_period, now
from benchmarks.tracking.schema import (
    CELL_ID,
    FAILURE_REASON,
    HEARTBEAT,
    NOTE,
    OWNER_HOST,
    OWNER_PID,
    RESUME_CHECKPOINT,
    RESUME_POINT,
    artifact,
)

log = logging.getLogger(__name__)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our own progress is enough
OPEN_ATTEMPTS = 4
# MLflow 3 opens an experiment without a kind in its GenAI view; these runs train models.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
EXPERIMENT_TAGS = dict([EXPERIMENT_KIND])


@dataclass(frozen=True)
class StoreConfig:
    """Where runs go (the ``tracking`` config group) and which finished runs count as done."""

    uri: str
    experiment: str
    artifact_location: str | None = None
    stale_after_s: float = 600.0
    reuse: Reuse = field(default_factory=Reuse)

    def open(self) -> Tracker:
        return Tracker(
            self.uri, self.experiment, self.artifact_location, self.stale_after_s, self.reuse
        )


def all_runs(
    client: MlflowClient, experiment_id: str, where: str = "", order_by: list[str] | None = None
) -> Iterator[Run]:
    """Every run of an MLflow experiment matching ``where``, page after page."""
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], where, max_results=1000, order_by=order_by, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def open_run(uri: str, run_id: str) -> str:
    """The status of run ``run_id`` in the existing store at ``uri``; ``LookupError`` naming what
    is missing. Nothing is created: a mistyped SQLite path is not a new empty store."""
    if uri.startswith(SQLITE):
        path = Path(uri.removeprefix(SQLITE)).expanduser()
        if not path.is_file():
            raise LookupError(
                f"no MLflow store at {uri} (no file {path}); pass --tracking-uri of the store "
                "the run was logged to (experiment=smoke logs to sqlite:///smoke/mlflow.db)"
            )
    check_reachable(uri)
    try:
        return open_client(uri).get_run(run_id).info.status
    except mlflow.exceptions.MlflowException as error:
        raise LookupError(f"no run {run_id} in the store {uri} ({error.message[:200]})") from None


def open_existing(uri: str, experiment: str) -> Tracker | None:
    """The store's MLflow experiment if it has one, else None (readers must not create it)."""
    check_reachable(uri)
    if open_client(uri).get_experiment_by_name(experiment) is None:
        return None
    return Tracker(uri, experiment)


class StoreSetupError(RuntimeError):
    """The store opens but a sweep cannot log to it (a deleted experiment, unwritable artifacts):
    said once at start-up, never retried."""


class Tracker(CellClaims):
    """Thin layer over ``MlflowClient`` for one MLflow experiment."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        artifact_location: str | None = None,
        stale_after_s: float = 600.0,
        reuse: Reuse | None = None,
    ):
        self.uri = uri
        self.stale_after_s = stale_after_s
        self.reuse = reuse or Reuse()
        self.artifact_location = artifact_location
        check_reachable(uri)
        with creation_lock(uri):
            self._open(experiment, artifact_location)
        self.experiment = experiment

    def _open(self, experiment: str, artifact_location: str | None) -> None:
        uri = self.uri
        for attempt in range(OPEN_ATTEMPTS):
            try:
                self.client = StoreClient(tracking_uri=uri)
                self.experiment_id = self._experiment_id(experiment, artifact_location)
                break
            except StoreSetupError:
                raise
            except Exception as error:  # MLflow raises many types for a bad store
                if attempt + 1 == OPEN_ATTEMPTS:
                    raise RuntimeError(
                        f"cannot open the MLflow store tracking.uri={uri!r}: {error}. {STORE_HINT}"
                    ) from error
                # A server store can be briefly unavailable; the next try may find it.
                time.sleep(1.0 + attempt)

    def _experiment_id(self, experiment: str, artifact_location: str | None) -> str:
        found = self.client.get_experiment_by_name(experiment)
        if found is not None and found.lifecycle_stage == "deleted":
            raise StoreSetupError(
                f"the MLflow experiment {experiment!r} of tracking.uri={self.uri!r} was deleted "
                f"(id {found.experiment_id}): restore it (mlflow experiments restore "
                f"--experiment-id {found.experiment_id}), or log to another one "
                "(tracking.experiment=NAME)"
            )
        if found is not None:
            if EXPERIMENT_KIND[0] not in found.tags:
                self.client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)
            return found.experiment_id
        location = artifact_location or default_artifact_location(self.uri)
        return self.client.create_experiment(experiment, location, tags=EXPERIMENT_TAGS)

    def check_artifacts_writable(self) -> None:
        """Fail once, before any cell, when the experiment's artifact location is a local folder
        that cannot be written (every cell would fail at its first artifact otherwise). Remote
        locations (s3://, a server's proxied artifacts) are checked by their first write."""
        location = self.client.get_experiment(self.experiment_id).artifact_location
        if not location.startswith(("file:", "/")):
            return
        folder = Path(urllib.parse.unquote(urllib.parse.urlsplit(location).path))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
                pass
        except OSError as error:
            raise StoreSetupError(
                f"the artifact location {location} of experiment {self.experiment!r} cannot be "
                f"written ({error.strerror}: {error.filename}): make it writable, or log to an "
                "experiment with another location (tracking.experiment=NAME "
                "tracking.artifact_location=file:///writable/folder)"
            ) from None

    @property
    def config(self) -> StoreConfig:
        """How to open this store again (in a worker process)."""
        return StoreConfig(
            self.uri, self.experiment, self.artifact_location, self.stale_after_s, self.reuse
        )

    def search(self, where: str = "", order_by: list[str] | None = None) -> Iterator[Run]:
        """Every run of the experiment matching ``where``, page after page."""
        return all_runs(self.client, self.experiment_id, where, order_by)

    def runs_of(self, key: CellKey, status: str | None = None) -> list[Run]:
        """The cell's runs (newest first), optionally only those with ``status``."""
        where = f"tags.{CELL_ID} = '{key.cell_id}'"
        if status is not None:
            where += f" and attributes.status = '{status}'"
        runs = self.search(where, order_by=["attributes.start_time DESC"])
        return [r for r in runs if key.matches(r)]

    def find_finished(self, key: CellKey) -> Run | None:
        """The newest finished run of the cell that this sweep's ``reuse`` takes, or ``None``."""
        runs = [r for r in self.runs_of(key, "FINISHED") if self.reuse.accepts(r, key)]
        return runs[0] if runs else None

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def killed_with_checkpoint(self, key: CellKey, device="cpu") -> tuple[Run, dict] | None:
        """The newest KILLED run of the cell, made by today's code, whose resumable checkpoint
        can be read, with the checkpoint loaded onto ``device``; None if there is none. A run
        killed while writing it leaves a truncated file: that run is passed over with a warning,
        so the cell resumes from an older run's checkpoint or starts afresh instead of failing
        on every rerun."""
        for run in self.runs_of(key, "KILLED"):
            if RESUME_POINT not in run.data.tags or key.is_stale(run):
                continue
            try:
                state = self.download_torch(run.info.run_id, artifact(RESUME_CHECKPOINT), device)
            except Exception as error:  # torch and MLflow raise many types for a bad file
                log.warning(
                    "run %s: its checkpoint cannot be read (%s: %s); not resuming from it",
                    run.info.run_id,
                    type(error).__name__,
                    str(error)[:200],
                )
                continue
            return run, state
        return None

    @contextmanager
    def run(
        self,
        name: str,
        tags: Mapping[str, str],
        params: Mapping[str, str],
        key: CellKey | None = None,
    ) -> Iterator[TrackedRun]:
        """A run that ends FINISHED, or FAILED with the reason when the body raises. With a
        cell ``key`` the run first claims the cell (``CellTakenError`` when another holds it)."""
        owner = {OWNER_HOST: socket.gethostname(), OWNER_PID: str(os.getpid())}
        all_tags = {**tags, **owner}
        if key is not None:
            run = self._claim(name, {**all_tags, CELL_ID: key.cell_id}, key)
        else:
            run = self.client.create_run(
                self.experiment_id, run_name=name, tags={**all_tags, HEARTBEAT: now()}
            )
        with ended_if_stopped(self, run.info.run_id, "before its cell started"):
            period = heartbeat_period(self.stale_after_s)
            tracked = TrackedRun(self.client, run.info.run_id, period)
        try:
            tracked.params(params)
            yield tracked
            tracked.flush()  # inside: an interrupt during the last flush still marks the run
        except BaseException as error:
            tracked.stop_heartbeat()
            tracked.flush()
            status = "KILLED" if isinstance(error, KeyboardInterrupt | SystemExit) else "FAILED"
            self.end(run.info.run_id, status, f"{type(error).__name__}: {error}")
            raise
        tracked.stop_heartbeat()
        self.client.set_terminated(run.info.run_id, "FINISHED")

    def end(self, run_id: str, status: str, reason: str) -> None:
        """End a run as KILLED or FAILED, with the reason on its page."""
        reason = reason[:4900]
        self.client.set_tag(run_id, FAILURE_REASON, reason)
        self.client.set_tag(run_id, NOTE, f"{status}: {reason}")
        self.client.set_terminated(run_id, status)

    def rekey_legacy_runs(self, key_of: Callable[[Run], Mapping[str, str] | None]) -> int:
        """Give runs made before cell ids (no ``cell_id`` tag) the tags ``key_of(run)`` computes
        from their logged config; returns how many were re-keyed. Idempotent: a re-keyed run is
        not touched again. Runs whose config cannot be read keep their old tags."""
        count = 0
        for run in list(self.search()):
            if CELL_ID in run.data.tags:
                continue
            tags = key_of(run)
            if tags:
                for name, value in tags.items():
                    self.client.set_tag(run.info.run_id, name, value)
                count += 1
        return count

    def download(self, run_id: str, artifact_path: str, destination: str) -> Path:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=artifact_path,
                dst_path=destination,
                tracking_uri=self.uri,
            )
        )

    def download_torch(self, run_id: str, artifact_path: str, device) -> dict:
        """A ``torch.save``d artifact of a run, loaded (tensors only) onto ``device``."""
        import torch

        with tempfile.TemporaryDirectory() as tmp:
            path = self.download(run_id, artifact_path, tmp)
            return torch.load(path, map_location=device, weights_only=True)
