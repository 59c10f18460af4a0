"""A shared store as a lab runs it: a real PostgreSQL server behind a real ``mlflow server``, two
parallel workers sweeping against it. Skipped, with the reason, where PostgreSQL's binaries or the
driver (``pip install -e '.[server]'``) are absent."""

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
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmarks import PROJECT_ROOT as ROOT

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


@pytest.fixture
def postgres_uri() -> Iterator[str]:
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
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = ["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(as_postgres_user(stop), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def mlflow_server(postgres_uri, tmp_path) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            postgres_uri,
            "--artifacts-destination",
            (tmp_path / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "server.log", "w"),  # noqa: SIM115 (closed with the process)
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not answer within 180 s"
            time.sleep(1.0)
    try:
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_two_workers_against_a_postgres_backed_server_finish_every_cell_once(
    mlflow_server, tmp_path
):
    command = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "experiment=smoke",
        "method=magnitude",  # dense of each seed first, then magnitude at 50% and 90%
        "sweep.seeds=[0,1]",
        "workers=2",
        f"tracking.uri={mlflow_server}",
        f"results_dir={tmp_path}/results",
        f"hydra.run.dir={tmp_path}/out",
        f"dataset.cache_dir={tmp_path}/cache",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("mtl-sparse-bench")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert all(r.info.status == "FINISHED" for r in runs)
    per_cell = Counter(r.data.tags["cell_id"] for r in runs)
    assert set(per_cell.values()) == {1} and len(per_cell) == 6  # 2 seeds x (dense + 2 levels)
    assert "magnitude" in (tmp_path / "results" / "leaderboard.md").read_text()
