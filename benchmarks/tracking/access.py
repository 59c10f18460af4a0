"""Opening an MLflow store: fail in seconds with a clear message, and create a SQLite store's
tables one process at a time."""

from __future__ import annotations

import fcntl
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STORE_HINT = "Use a writable path such as sqlite:///mlflow.db or a reachable tracking server."
PROBE_TIMEOUT_S = 5.0
SQLITE = "sqlite:///"


def default_artifact_location(uri: str) -> str | None:
    """Keep artifacts beside a SQLite store (``<db dir>/mlartifacts``) instead of the cwd."""
    if not uri.startswith(SQLITE):
        return None
    db_path = Path(uri[len(SQLITE) :]).expanduser().resolve()
    return (db_path.parent / "mlartifacts").as_uri()


def check_reachable(uri: str) -> None:
    """Fail in seconds, not minutes (MLflow retries an unreachable server for ~4 minutes and a
    SQLite file in a missing or read-only folder for ~2), with the same clear message."""
    problem = None
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S).close()
        except (OSError, ValueError) as error:
            problem = f"no MLflow server answers there ({error})"
    elif uri.startswith(SQLITE):
        folder = Path(uri.removeprefix(SQLITE)).expanduser().resolve().parent
        if not folder.is_dir():
            problem = f"the folder {folder} does not exist"
        elif not os.access(folder, os.W_OK):
            problem = f"the folder {folder} is not writable"
    if problem:
        raise RuntimeError(
            f"cannot open the MLflow store tracking.uri={uri!r}: {problem}. {STORE_HINT}"
        )


@contextmanager
def creation_lock(uri: str) -> Iterator[None]:
    """For a SQLite store, one process at a time creates or migrates its tables: two sweeps
    opening a fresh file at once otherwise leave it half-migrated ("table _alembic_tmp_...
    already exists") for every later run."""
    if not uri.startswith(SQLITE):
        yield
        return
    path = Path(uri.removeprefix(SQLITE)).expanduser()
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
