"""Opening an MLflow store: fail in seconds with a clear message, and create a SQLite store's
tables one process at a time."""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from mlflow.tracking import MlflowClient

from core.file_lock import exclusive

STORE_HINT = "Use a writable path such as sqlite:///mlflow.db or a reachable tracking server."
PROBE_TIMEOUT_S = 5.0
QUERY_TIMEOUT_S = 10.0
SQLITE = "sqlite:///"
DATABASES = ("postgresql", "mysql", "mssql")  # SQLAlchemy URIs: postgresql+psycopg://... too
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


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
        problem = _server_problem(uri.rstrip("/"))
    elif uri.startswith(SQLITE):
        problem = _sqlite_problem(Path(uri.removeprefix(SQLITE)).expanduser().resolve())
    elif uri.startswith(DATABASES):
        problem = _database_problem(uri)
    if problem:
        raise RuntimeError(
            f"cannot open the MLflow store tracking.uri={uri!r}: {problem}. {STORE_HINT}"
        )


def _server_problem(uri: str) -> str | None:
    """An MLflow server must answer /health and a real query (its database may be down while
    /health still answers: then every request hangs or fails)."""
    try:
        urllib.request.urlopen(f"{uri}/health", timeout=PROBE_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        return f"no MLflow server answers there ({error})"
    query = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        urllib.request.urlopen(query, timeout=PROBE_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        return f"the server answers /health but not a query: is its database up? ({error})"
    return None


def _sqlite_problem(path: Path) -> str | None:
    folder = path.parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is not writable"
    if path.exists():
        try:
            path.open("r+b").close()  # honours chattr +i and read-only mounts, even as root
        except OSError as error:
            return f"the store file {path} is not writable ({error.strerror})"
    return None


def _database_problem(uri: str) -> str | None:
    """A database server must accept a TCP connection (MLflow retries one that does not for
    minutes) and answer a query."""
    parsed = urllib.parse.urlsplit(uri)
    scheme = parsed.scheme.split("+")[0]
    if parsed.hostname is None:  # a Unix socket (``postgresql://user@/db?host=/run/pg``)
        return _query_problem(uri, "its Unix socket")
    host, port = parsed.hostname, parsed.port or DEFAULT_PORTS.get(scheme)
    if port is None:
        return None
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as error:
        return f"no database server accepts connections at {host}:{port} ({error})"
    return _query_problem(uri, f"{host}:{port}")


def _query_problem(uri: str, where: str) -> str | None:
    """A database that accepts connections must also answer ``SELECT 1`` within
    ``QUERY_TIMEOUT_S`` (one that never answers stalls MLflow for many minutes). The query runs
    in a daemon thread, so a server that hangs mid-handshake cannot hang the probe."""
    outcome: list[str | None] = []

    def query() -> None:
        try:
            engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
            outcome.append(None)
        except Exception as error:  # any driver's error: wrong password, no database, no driver
            outcome.append(f"{type(error).__name__}: {str(error).strip()[:300]}")

    probe = threading.Thread(target=query, daemon=True)
    probe.start()
    probe.join(QUERY_TIMEOUT_S)
    if probe.is_alive():
        return (
            f"the database server at {where} accepts connections but did not answer a query "
            f"within {QUERY_TIMEOUT_S:.0f} s (is it a database server, and is it up?)"
        )
    if outcome[0] is not None:
        return f"the database at {where} does not answer a query ({outcome[0]})"
    return None


@contextmanager
def creation_lock(uri: str) -> Iterator[None]:
    """For a SQLite store, one process at a time creates or migrates its tables: two sweeps
    opening a fresh file at once otherwise leave it half-migrated ("table _alembic_tmp_...
    already exists") for every later run."""
    if not uri.startswith(SQLITE):
        yield
        return
    lock = Path(f"{Path(uri.removeprefix(SQLITE)).expanduser()}.lock")
    if not os.access(lock.parent, os.W_OK):  # a reader of a read-only store creates nothing
        yield
        return
    with exclusive(lock):
        yield


def open_client(uri: str) -> MlflowClient:
    """An ``MlflowClient`` on ``uri``. Opening a SQLite store creates its tables when it has none,
    so a reader that opened a store a sweep was creating raced it ("table datasets already
    exists"): it opens under the same lock."""
    with creation_lock(uri):
        return MlflowClient(tracking_uri=uri)
