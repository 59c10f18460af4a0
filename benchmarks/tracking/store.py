"""MLflow tracking: one run per cell, found again by the hash of its config."""

from __future__ import annotations

import fcntl
import logging
import os
import random
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.tracking import MlflowClient

from benchmarks import PROJECT_ROOT

log = logging.getLogger(__name__)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our own progress is enough
MAX_BATCH = 100  # MLflow's per-request limit for params / metrics in log_batch
HEARTBEAT, OWNER_HOST, OWNER_PID = "heartbeat", "owner_host", "owner_pid"  # run tags
CLAIM_ATTEMPTS = 20  # collisions in a row before a claim gives up
HEARTBEAT_EVERY_S = 30.0  # a running cell renews its heartbeat (and flushes) at least this often


def default_artifact_location(uri: str) -> str | None:
    """Keep artifacts beside a SQLite store (``<db dir>/mlartifacts``) instead of the cwd."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    db_path = Path(uri[len(prefix) :]).expanduser().resolve()
    return (db_path.parent / "mlartifacts").as_uri()


def _git(*args: str) -> str:
    root = PROJECT_ROOT
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()


def code_version() -> str:
    """Git commit of the checkout (with ``-dirty`` for local changes), else the package version."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("mtl-sparse-bench")
        except PackageNotFoundError:
            return "unknown"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"a.b.c": "value"}`` for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


STORE_HINT = "Use a writable path such as sqlite:///mlflow.db or a reachable tracking server."
PROBE_TIMEOUT_S = 5.0
OPEN_ATTEMPTS = 4


def check_reachable(uri: str) -> None:
    """Fail in seconds, not minutes (MLflow retries an unreachable server for ~4 minutes and a
    SQLite file in a missing or read-only folder for ~2), with the same clear message."""
    problem = None
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S).close()
        except (OSError, ValueError) as error:
            problem = f"no MLflow server answers there ({error})"
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not folder.is_dir():
            problem = f"the folder {folder} does not exist"
        elif not os.access(folder, os.W_OK):
            problem = f"the folder {folder} is not writable"
    if problem:
        raise RuntimeError(
            f"cannot open the MLflow store tracking.uri={uri!r}: {problem}. {STORE_HINT}"
        )


@contextmanager
def _creation_lock(uri: str) -> Iterator[None]:
    """For a SQLite store, one process at a time creates or migrates its tables: two sweeps
    opening a fresh file at once otherwise leave it half-migrated ("table _alembic_tmp_...
    already exists") for every later run."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = Path(uri.removeprefix("sqlite:///")).expanduser()
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
    ):
        self.uri = uri
        self.stale_after_s = stale_after_s
        check_reachable(uri)
        with _creation_lock(uri):
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

    def find_finished(self, config_hash: str):
        """The newest finished run of this config, or ``None``."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.config_hash = '{config_hash}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    @contextmanager
    def run(
        self, name: str, tags: Mapping[str, str], params: Mapping[str, str]
    ) -> Iterator[RunLog]:
        """A run that ends FINISHED, or FAILED with the reason when the body raises."""
        owner = {OWNER_HOST: socket.gethostname(), OWNER_PID: str(os.getpid())}
        all_tags = {**tags, **owner}
        if "config_hash" in tags:
            run = self._claim(name, all_tags, tags["config_hash"])
        else:
            run = self.client.create_run(
                self.experiment_id, run_name=name, tags={**all_tags, HEARTBEAT: _now()}
            )
        run_log = RunLog(self.client, run.info.run_id)
        run_log.params(params)
        try:
            yield run_log
            run_log.flush()  # inside: an interrupt during the last flush still marks the run
        except BaseException as error:
            run_log.flush()
            reason = f"{type(error).__name__}: {error}"[:4900]
            self.client.set_tag(run.info.run_id, "failure_reason", reason)
            self.client.set_tag(run.info.run_id, "mlflow.note.content", f"FAILED: {reason}")
            status = "KILLED" if isinstance(error, KeyboardInterrupt | SystemExit) else "FAILED"
            self.client.set_terminated(run.info.run_id, status)
            raise
        self.client.set_terminated(run.info.run_id, "FINISHED")

    def _claim(self, name: str, tags: Mapping[str, str], config_hash: str) -> Run:
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
                self.experiment_id, run_name=name, tags={**tags, HEARTBEAT: _now()}
            )
            others = [
                r for r in self.live_or_finished(config_hash) if r.info.run_id != run.info.run_id
            ]
            if not others:
                return run
            self.client.delete_run(run.info.run_id)
            time.sleep(jitter.uniform(0.05, 1.0))
            holders = self.live_or_finished(config_hash)
            if holders:
                raise CellTakenError(
                    f"cell {config_hash} is {holders[0].info.status.lower()} in run "
                    f"{holders[0].info.run_id}, started by another sweep"
                )
        raise CellTakenError(
            f"cell {config_hash}: {CLAIM_ATTEMPTS} claims collided with other sweeps; "
            "rerun the sweep to train it"
        )

    def live_or_finished(self, config_hash: str) -> list[Run]:
        """Runs of this cell that finished or are still running (not orphans)."""
        runs = self.client.search_runs(
            [self.experiment_id], f"tags.config_hash = '{config_hash}'", max_results=1000
        )
        return [
            r
            for r in runs
            if r.info.status == "FINISHED"
            or (
                r.info.status == "RUNNING"
                and _orphan_reason(r.data.tags, self.stale_after_s) is None
            )
        ]

    def wait_for_other_sweep(self, config_hash: str, poll_s: float = 5.0) -> Run | None:
        """The cell's finished run, waiting for it while another sweep is running the cell;
        None when no run of the cell is finished or alive (then the caller trains it)."""
        while True:
            runs = self.live_or_finished(config_hash)
            finished = [r for r in runs if r.info.status == "FINISHED"]
            if finished or not runs:
                return finished[0] if finished else None
            time.sleep(poll_s)

    def reap_orphans(self) -> list[str]:
        """Mark KILLED the RUNNING runs whose process is gone (it ran on this host and its pid
        is dead: kill -9, a crash) or whose heartbeat is older than ``stale_after_s`` (another
        host); returns their names. Their cells then run again, as any unfinished cell does."""
        reaped = []
        running = self.client.search_runs(
            [self.experiment_id], "attributes.status = 'RUNNING'", max_results=1000
        )
        for run in running:
            reason = _orphan_reason(run.data.tags, self.stale_after_s)
            if reason is None:
                continue
            self.client.set_tag(run.info.run_id, "failure_reason", reason)
            self.client.set_tag(run.info.run_id, "mlflow.note.content", f"KILLED: {reason}")
            self.client.set_terminated(run.info.run_id, "KILLED")
            reaped.append(f"{run.info.run_name} ({reason})")
        return reaped

    def download(self, run_id: str, artifact_path: str, destination: str) -> Path:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=artifact_path,
                dst_path=destination,
                tracking_uri=self.uri,
            )
        )


def _now() -> str:
    return f"{time.time():.0f}"


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


class RunLog:
    """Buffered metric logging for one run (one request per flush, not one per value)."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client = client
        self.run_id = run_id
        self.pending: list[Metric] = []
        self.beat = time.monotonic()

    def params(self, params: Mapping[str, str]) -> None:
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), MAX_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + MAX_BATCH])

    def metrics(self, values: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.pending.extend(Metric(k, float(v), now, step) for k, v in values.items())
        if len(self.pending) >= 500 or time.monotonic() - self.beat > HEARTBEAT_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Send the buffered metrics and renew the run's heartbeat."""
        for start in range(0, len(self.pending), MAX_BATCH):
            self.client.log_batch(self.run_id, metrics=self.pending[start : start + MAX_BATCH])
        self.pending = []
        self.client.set_tag(self.run_id, HEARTBEAT, _now())
        self.beat = time.monotonic()

    def tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def artifact(self, local_path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def artifact_torch(self, state: Any, filename: str, artifact_path: str) -> None:
        """``torch.save`` of ``state`` as ``artifact_path/filename`` (overwritten if present)."""
        import torch

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / filename
            torch.save(state, path)
            self.artifact(path, artifact_path)

    def artifact_text(self, text: str, filename: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / filename
            path.write_text(text)
            self.artifact(path)
