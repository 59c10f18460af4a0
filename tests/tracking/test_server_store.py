"""A shared store as a lab runs it: a real ``mlflow server`` (PostgreSQL behind it) with two
parallel workers sweeping against it, its database going down, the server itself going away for
20 s. The PostgreSQL tests are skipped, with the reason, where its binaries or the driver
(``pip install -e '.[server]'``) are absent."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks import PROJECT_ROOT as ROOT
from tests.helpers import smoke_command, store_runs

pytestmark = pytest.mark.slow
POSTGRES_BINARIES = ("initdb", "pg_ctl", "postgres")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its binaries as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    return ["runuser", "-u", "postgres", "--", *command]


@dataclass
class Postgres:
    """A PostgreSQL server in a temp folder, as the tests start it."""

    data: Path
    uri: str

    def stop(self) -> None:
        stop = ["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"]
        subprocess.run(as_postgres_user(stop), capture_output=True)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    missing = [b for b in POSTGRES_BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"PostgreSQL binaries not on PATH: {', '.join(missing)}")
    pytest.importorskip(
        "psycopg", reason="the driver is in the server extra: pip install -e '.[server]'"
    )
    folder = Path(tempfile.mkdtemp(prefix="pgtest-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(
        as_postgres_user(["initdb", "-D", str(data), "-U", "postgres", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    start = ["pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run(as_postgres_user(start), check=True, capture_output=True)
    server = Postgres(data, f"postgresql://postgres@127.0.0.1:{port}/postgres")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def mlflow_server(backend_uri: str, folder: Path, port: int) -> Iterator[str]:
    """A real ``mlflow server`` on ``port`` until the block ends (its whole process group is
    stopped: the server starts job-runner children)."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend_uri,
            "--artifacts-destination",
            (folder / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "server.log", "a"),  # noqa: SIM115 (closed with the process)
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            assert server.poll() is None, (folder / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not answer within 180 s"
            time.sleep(1.0)
    try:
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=60)


def test_two_workers_against_a_postgres_backed_server_finish_every_cell_once(postgres, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with mlflow_server(postgres.uri, tmp_path, free_port()) as uri:
        command = smoke_command(
            tmp_path,
            "method=magnitude",  # dense of each seed first, then magnitude at 50% and 90%
            "sweep.seeds=[0,1]",
            "workers=2",
            uri=uri,
        )
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs = store_runs(uri)
    assert all(r.info.status == "FINISHED" for r in runs)
    per_cell = Counter(r.data.tags["cell_id"] for r in runs)
    assert set(per_cell.values()) == {1} and len(per_cell) == 6  # 2 seeds x (dense + 2 levels)
    assert "magnitude" in (tmp_path / "results" / "leaderboard.md").read_text()


def test_a_server_whose_database_is_down_fails_the_sweep_in_seconds_with_the_reason(
    postgres, tmp_path
):
    """The server still answers /health, but every query hung: the sweep waited over 420 s."""
    with mlflow_server(postgres.uri, tmp_path, free_port()) as uri:
        postgres.stop()
        started = time.monotonic()
        result = subprocess.run(
            smoke_command(tmp_path, "method=magnitude", uri=uri),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        took = time.monotonic() - started
    assert result.returncode != 0
    assert "answers /health but not a query: is its database up?" in result.stdout + result.stderr
    assert took < 60, f"took {took:.0f} s to fail"


def test_a_sweep_rides_out_a_20_s_outage_of_its_tracking_server(tmp_path):
    """MLflow retries each request with backoff (7 tries, about 4 minutes in all): a server that
    is down for 20 s mid-cell costs the sweep those seconds, not its cells."""
    backend, port = f"sqlite:///{tmp_path}/server.db", free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    output = tmp_path / "sweep.log"
    with mlflow_server(backend, tmp_path, port) as uri, output.open("w") as log:
        process = subprocess.Popen(
            smoke_command(
                tmp_path, "method=magnitude", "sparsity=0.5", "protocol.steps=600", uri=uri
            ),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while not any(r.info.status == "RUNNING" for r in store_runs(uri)):
            assert process.poll() is None, output.read_text()[-2000:]
            assert time.monotonic() < deadline, "no cell started"
            time.sleep(0.5)
    time.sleep(20)  # the server is down: requests are refused
    with mlflow_server(backend, tmp_path, port) as uri:
        assert process.wait(timeout=600) == 0, output.read_text()[-3000:]
        runs = store_runs(uri)
    assert "Connection refused" in output.read_text()  # the outage did hit requests
    assert sorted((r.data.tags["method"], r.info.status) for r in runs) == [
        ("dense", "FINISHED"),
        ("magnitude", "FINISHED"),
    ]
