"""The MLflow store of one experiment: find a cell's runs, claim a cell, start and end runs,
reap orphans. Every other module reaches MLflow through this package."""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from benchmarks.tracking.access import (
    STORE_HINT,
    check_reachable,
    creation_lock,
    default_artifact_location,
)
from benchmarks.tracking.run_log import TrackedRun, now
from benchmarks.tracking.schema import (
    CELL_ID,
    CODE_FINGERPRINT,
    FAILURE_REASON,
    HEARTBEAT,
    NOTE,
    OWNER_HOST,
    OWNER_PID,
    RESUME_POINT,
)

log = logging.getLogger(__name__)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our own progress is enough
CLAIM_ATTEMPTS = 20  # collisions in a row before a claim gives up
OPEN_ATTEMPTS = 4
RERUN_MODES = ("none", "stale", "all")


@dataclass(frozen=True)
class CellKey:
    """How the store recognises a cell's runs: its id, its resolved options as flat strings (a
    run logged under other values for the same id, after a default changed, is another cell),
    and the fingerprint of the code that computes it (a run made by other code is stale)."""

    cell_id: str
    resolved: Mapping[str, str]
    fingerprint: str

    def matches(self, run: Run) -> bool:
        """Same options wherever both the run's params and this key name one."""
        params = run.data.params
        return all(params[k] == v for k, v in self.resolved.items() if k in params)

    def is_stale(self, run: Run) -> bool:
        return run.data.tags.get(CODE_FINGERPRINT) != self.fingerprint


@dataclass(frozen=True)
class Reuse:
    """Which finished runs a sweep takes as done: ``none`` any (stale ones with a warning),
    ``stale`` only those made by today's code, ``all`` only those started at or after
    ``since_ms`` by today's code (this sweep's own, or a concurrent one's)."""

    rerun: str = "none"
    since_ms: int = 0

    def __post_init__(self) -> None:
        if self.rerun not in RERUN_MODES:
            raise ValueError(f"rerun={self.rerun!r}: choose one of {', '.join(RERUN_MODES)}")

    def accepts(self, run: Run, key: CellKey) -> bool:
        if self.rerun == "none":
            return True
        fresh = not key.is_stale(run)
        return fresh and (self.rerun == "stale" or run.info.start_time >= self.since_ms)


@dataclass(frozen=True)
class StoreConfig:
    """Where runs go (the ``tracking`` config group) and which finished runs count as done."""

    uri: str
    experiment: str
    artifact_location: str | None = None
    stale_after_s: float = 600.0
    reuse: Reuse = Reuse()

    def open(self) -> Tracker:
        return Tracker(
            self.uri, self.experiment, self.artifact_location, self.stale_after_s, self.reuse
        )


def open_existing(uri: str, experiment: str) -> Tracker | None:
    """The store's experiment if it has one, else None (readers must not create it)."""
    check_reachable(uri)
    if MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment) is None:
        return None
    return Tracker(uri, experiment)


class CellTakenError(RuntimeError):
    """Another sweep is running, or has finished, this cell: nothing to do here."""


class Tracker:
    """Thin layer over ``MlflowClient`` for one experiment."""

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
                self.client = MlflowClient(tracking_uri=uri)
                self.experiment_id = self._experiment_id(experiment, artifact_location)
                break
            except Exception as error:  # MLflow raises many types for a bad store
                if attempt + 1 == OPEN_ATTEMPTS:
                    raise RuntimeError(
                        f"cannot open the MLflow store tracking.uri={uri!r}: {error}. {STORE_HINT}"
                    ) from error
                # A server store can be briefly unavailable; the next try may find it.
                time.sleep(1.0 + attempt)

    def _experiment_id(self, experiment: str, artifact_location: str | None) -> str:
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        location = artifact_location or default_artifact_location(self.uri)
        return self.client.create_experiment(experiment, location)

    @property
    def config(self) -> StoreConfig:
        """How to open this store again (in a worker process)."""
        return StoreConfig(
            self.uri, self.experiment, self.artifact_location, self.stale_after_s, self.reuse
        )

    def search(self, where: str = "", order_by: list[str] | None = None) -> Iterator[Run]:
        """Every run of the experiment matching ``where``, page after page."""
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], where, max_results=1000, order_by=order_by, page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

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

    def killed_with_checkpoint(self, key: CellKey) -> list[Run]:
        """KILLED runs of the cell, made by today's code, that saved a resumable checkpoint."""
        return [
            r
            for r in self.runs_of(key, "KILLED")
            if RESUME_POINT in r.data.tags and not key.is_stale(r)
        ]

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
        tracked = TrackedRun(self.client, run.info.run_id)
        tracked.params(params)
        try:
            yield tracked
            tracked.flush()  # inside: an interrupt during the last flush still marks the run
        except BaseException as error:
            tracked.flush()
            status = "KILLED" if isinstance(error, KeyboardInterrupt | SystemExit) else "FAILED"
            self.end(run.info.run_id, status, f"{type(error).__name__}: {error}")
            raise
        self.client.set_terminated(run.info.run_id, "FINISHED")

    def end(self, run_id: str, status: str, reason: str) -> None:
        """End a run as KILLED or FAILED, with the reason on its page."""
        reason = reason[:4900]
        self.client.set_tag(run_id, FAILURE_REASON, reason)
        self.client.set_tag(run_id, NOTE, f"{status}: {reason}")
        self.client.set_terminated(run_id, status)

    def _claim(self, name: str, tags: Mapping[str, str], key: CellKey) -> Run:
        """Create the cell's run and keep it only if no other live or finished run of the
        cell is visible right after: write, then read. Of two sweeps that start the cell at
        once, the one that reads second always sees both, so at most one keeps its run (start
        times cannot decide it: a run's row may be committed after a later-started run's
        read). When both see both, both delete theirs; each then waits a random moment and
        tries again if the cell is still free, so one of them wins. Raises
        ``CellTakenError`` when another run holds the cell."""
        jitter = random.Random(f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}")
        for _attempt in range(CLAIM_ATTEMPTS):
            run = self.client.create_run(
                self.experiment_id, run_name=name, tags={**tags, HEARTBEAT: now()}
            )
            others = [r for r in self.live_or_finished(key) if r.info.run_id != run.info.run_id]
            if not others:
                return run
            self.client.delete_run(run.info.run_id)
            time.sleep(jitter.uniform(0.05, 1.0))
            holders = self.live_or_finished(key)
            if holders:
                raise CellTakenError(
                    f"cell {key.cell_id} is {holders[0].info.status.lower()} in run "
                    f"{holders[0].info.run_id}, started by another sweep"
                )
        raise CellTakenError(
            f"cell {key.cell_id}: {CLAIM_ATTEMPTS} claims collided with other sweeps; "
            "rerun the sweep to train it"
        )

    def live_or_finished(self, key: CellKey) -> list[Run]:
        """Runs of this cell that finished (and this sweep takes as done) or are still running
        (not orphans)."""
        return [
            r
            for r in self.runs_of(key)
            if (r.info.status == "FINISHED" and self.reuse.accepts(r, key))
            or (
                r.info.status == "RUNNING"
                and _orphan_reason(r.data.tags, self.stale_after_s) is None
            )
        ]

    def wait_for_other_sweep(self, key: CellKey, poll_s: float = 5.0) -> Run | None:
        """The cell's finished run, waiting for it while another sweep is running the cell;
        None when no run of the cell is finished or alive (then the caller trains it)."""
        while True:
            runs = self.live_or_finished(key)
            finished = [r for r in runs if r.info.status == "FINISHED"]
            if finished or not runs:
                return finished[0] if finished else None
            time.sleep(poll_s)

    def reap_orphans(self) -> list[str]:
        """Mark KILLED the RUNNING runs whose process is gone (it ran on this host and its pid
        is dead: kill -9, a crash) or whose heartbeat is older than ``stale_after_s`` (another
        host); returns their names. Their cells then run again, as any unfinished cell does."""
        reaped = []
        for run in list(self.search("attributes.status = 'RUNNING'")):
            reason = _orphan_reason(run.data.tags, self.stale_after_s)
            if reason is None:
                continue
            self.end(run.info.run_id, "KILLED", reason)
            reaped.append(f"{run.info.run_name} ({reason})")
        return reaped

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
        import tempfile

        import torch

        with tempfile.TemporaryDirectory() as tmp:
            path = self.download(run_id, artifact_path, tmp)
            return torch.load(path, map_location=device, weights_only=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _orphan_reason(tags: Mapping[str, str], stale_after_s: float) -> str | None:
    """Why a RUNNING run is an orphan, or None when it may still be alive."""
    if tags.get(OWNER_HOST) == socket.gethostname() and OWNER_PID in tags:
        if not _pid_alive(int(tags[OWNER_PID])):
            return f"its process {tags[OWNER_PID]} on this host is gone (killed or crashed)"
        return None
    age = time.time() - float(tags.get(HEARTBEAT, 0))
    if age > stale_after_s:
        return f"no heartbeat for {age:.0f} s (tracking.stale_after_s={stale_after_s:g})"
    return None
