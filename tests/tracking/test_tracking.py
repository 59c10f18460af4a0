"""Opening the MLflow store: a bad URI is a clear error before MLflow's long retries."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from mlflow.store.db import utils as db_utils

from benchmarks.reporting.leaderboard import leaderboard_after_sweep
from benchmarks.reporting.settings import Comparison
from benchmarks.tracking.claims import CellTakenError
from benchmarks.tracking.keys import CellKey
from benchmarks.tracking.run_log import TrackedRun, heartbeat_period
from benchmarks.tracking.store import Tracker
from benchmarks.training import preemption


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound by this test and not listening: connections to it are refused, and no other
    process can take it while the test runs (a port picked and released could be)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def test_unreachable_server_is_named_without_mlflows_retries(refused_port):
    uri = f"http://127.0.0.1:{refused_port}"
    with pytest.raises(RuntimeError, match="no MLflow server answers there"):
        Tracker(uri, "x")


def test_a_store_gone_as_the_sweep_ends_says_how_to_write_the_leaderboard_later(
    refused_port, tmp_path, caplog
):
    """A server down when the sweep's cells are done: no traceback, the command that writes the
    leaderboard once it answers, and a failed exit (``benchmarks.sweep.main``)."""
    uri = f"http://127.0.0.1:{refused_port}"
    comparison = Comparison("dense", "all_metrics")
    assert not leaderboard_after_sweep(uri, "x", str(tmp_path / "results"), comparison)
    assert "no MLflow server answers there" in caplog.text
    assert f"python -m benchmarks.leaderboard --tracking-uri {uri} --experiment x" in caplog.text
    assert not (tmp_path / "results" / "leaderboard.md").exists()


def test_sqlite_file_in_a_missing_folder_is_named(tmp_path):
    uri = f"sqlite:///{tmp_path}/missing/mlflow.db"
    with pytest.raises(RuntimeError, match=f"the folder {tmp_path}/missing does not exist"):
        Tracker(uri, "x")


def test_unreachable_database_is_named_before_mlflows_retrying_engine(refused_port, monkeypatch):
    """MLflow retries a database that refuses connections for 419 s: the suite's probe must
    answer first, so MLflow's engine is never created."""

    def retrying_engine(*args, **kwargs):
        raise AssertionError("MLflow's retrying engine was reached before the probe answered")

    monkeypatch.setattr(db_utils, "create_sqlalchemy_engine_with_retry", retrying_engine)
    uri = f"postgresql://u@127.0.0.1:{refused_port}/db"
    with pytest.raises(RuntimeError, match=r"no database server accepts connections at 127\.0"):
        Tracker(uri, "x")


def test_an_immutable_store_file_is_named_before_anything_runs(tmp_path):
    db = tmp_path / "mlflow.db"
    Tracker(f"sqlite:///{db}", "x")
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        with pytest.raises(RuntimeError, match=f"the store file {db} is not writable"):
            Tracker(f"sqlite:///{db}", "x")
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)


CELL = CellKey("abc", {}, "code")


def test_a_claim_loses_to_any_live_run_of_the_cell_even_one_started_later(tmp_path):
    """A run whose row is committed late can carry an earlier start time than a run that
    already checked the store; ordering by start time let both train (seen in CI)."""
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "x")
    later = int(time.time() * 1000) + 60_000
    holder = tracker.client.create_run(
        tracker.experiment_id,
        start_time=later,
        tags={
            "cell_id": "abc",
            "owner_host": socket.gethostname(),
            "owner_pid": str(os.getpid()),
        },
    )
    with (
        pytest.raises(CellTakenError, match=holder.info.run_id),
        tracker.run("cell", {}, {}, CELL),
    ):
        pytest.fail("a second run of a live cell started training")
    runs = tracker.client.search_runs([tracker.experiment_id])
    assert [r.info.run_id for r in runs] == [holder.info.run_id]  # the loser's run is deleted


def test_a_claim_on_a_free_cell_keeps_its_run(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "x")
    with tracker.run("cell", {}, {}, CELL):
        pass
    assert tracker.find_finished(CELL) is not None


def test_a_runs_heartbeat_goes_on_while_the_cell_logs_nothing(tmp_path):
    """A pretrained cell waiting for (or training) its source logged nothing for minutes, and
    another host took it for an orphan."""
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "x", stale_after_s=0.8)  # beats: 0.2 s
    with tracker.run("cell", {}, {}, CELL) as run:  # the cell logs nothing from here on
        beats = {tracker.client.get_run(run.run_id).data.tags["heartbeat"]}
        deadline = time.monotonic() + 60  # a bound on a hang, not a measured duration
        while len(beats) < 3:  # two renewals seen
            assert time.monotonic() < deadline, f"the heartbeat stopped at {sorted(beats)}"
            beats.add(tracker.client.get_run(run.run_id).data.tags["heartbeat"])
            time.sleep(0.05)


@pytest.mark.parametrize("stale_after_s, period", [(600, 30.0), (120, 30.0), (60, 15.0), (2, 0.5)])
def test_the_heartbeat_beats_several_times_within_the_stale_period(stale_after_s, period):
    assert heartbeat_period(stale_after_s) == period


def test_a_run_stopped_while_claiming_its_cell_ends_killed_not_running(tmp_path, monkeypatch):
    """kill -9 of a sweep's parent sends its workers SIGTERM; one that arrived while a worker
    was still reading the store to claim its cell left that run RUNNING."""
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "x")
    reads = tracker.live_or_finished

    def read_then_sigterm(key):
        found = reads(key)
        os.kill(os.getpid(), signal.SIGTERM)  # the preemption handler raises here
        return found

    monkeypatch.setattr(tracker, "live_or_finished", read_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    preemption.install()
    try:
        with pytest.raises(KeyboardInterrupt), tracker.run("cell", {}, {}, CELL):
            pytest.fail("the cell started")
    finally:
        signal.signal(signal.SIGTERM, before)
    (run,) = tracker.client.search_runs([tracker.experiment_id])
    assert run.info.status == "KILLED"
    assert "while claiming its cell" in run.data.tags["failure_reason"]


def test_two_cells_of_a_new_dataset_starting_together_both_link_it(tmp_path):
    """Parallel workers on a fresh store: both cells found no row for the dataset, both inserted
    one, and the second insert failed its cell (a UNIQUE constraint). The test holds the SQLite
    write lock while both cells read, so both reads find nothing before either inserts."""
    db = tmp_path / "mlflow.db"
    tracker = Tracker(f"sqlite:///{db}", "x")
    runs = [tracker.client.create_run(tracker.experiment_id).info.run_id for _ in range(2)]
    tracked = [TrackedRun(tracker.client, run_id) for run_id in runs]
    errors: list[BaseException] = []

    def link(run: TrackedRun) -> None:
        try:
            run.dataset_input("synthetic", "0123456789ab", None)
        except BaseException as error:
            errors.append(error)

    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # reads go on, every insert waits
    threads = [threading.Thread(target=link, args=(run,)) for run in tracked]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # both reads done (not a measured duration: a late read finds the row)
    writer.execute("COMMIT")
    for thread in threads:
        thread.join(timeout=120)
    for run in tracked:
        run.stop_heartbeat()
    assert errors == []
    for run_id in runs:
        (given,) = tracker.client.get_run(run_id).inputs.dataset_inputs
        assert (given.dataset.name, given.dataset.digest) == ("synthetic", "0123456789ab")


def sweep_setup_error(caplog, *overrides: str) -> str:
    """The start-up error of a smoke sweep with ``overrides`` (it must exit 2 before any cell)."""
    from benchmarks.sweep.main import sweep
    from tests.helpers import smoke_config

    with pytest.raises(SystemExit) as stopped:
        sweep(smoke_config("method=magnitude", "sparsity=0.5", "sweep.seeds=[0]", *overrides))
    assert stopped.value.code == 2
    return caplog.text


def test_a_deleted_experiment_is_one_start_up_message_not_a_failed_run_per_cell(tmp_path, caplog):
    """Issue 29 D4: MLflow finds a deleted experiment by name and refuses every run in it."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "mtl-sparse-bench")
    tracker.client.delete_experiment(tracker.experiment_id)
    message = sweep_setup_error(caplog, f"tracking.uri={uri}", f"results_dir={tmp_path}/r")
    restore = f"mlflow experiments restore --experiment-id {tracker.experiment_id}"
    assert "'mtl-sparse-bench'" in message and "was deleted" in message and restore in message
    runs = tracker.client.search_runs([tracker.experiment_id], run_view_type=3)  # deleted too
    assert not runs


def test_an_unwritable_artifact_location_is_one_start_up_message(tmp_path, caplog):
    """Issue 29 D4: artifacts under a path that cannot be a folder (a file is in the way: it
    holds even as root, unlike a read-only mode)."""
    (tmp_path / "a-file").write_text("")
    location = (tmp_path / "a-file" / "artifacts").as_uri()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    overrides = (f"tracking.uri={uri}", f"tracking.artifact_location={location}")
    message = sweep_setup_error(caplog, *overrides, f"results_dir={tmp_path}/r")
    assert f"the artifact location {location}" in message and "cannot be written" in message
    tracker = Tracker(uri, "mtl-sparse-bench")
    assert not tracker.client.search_runs([tracker.experiment_id])


def test_a_database_port_that_accepts_and_never_answers_is_named_in_seconds():
    """Issue 29 D5: a listening socket nobody serves (the kernel completes the connection, no
    reply ever comes) stalled a sweep for more than 15 minutes behind MLflow's retries."""
    pytest.importorskip("psycopg")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with pytest.raises(RuntimeError, match="accepts connections but did not answer a query"):
            Tracker(f"postgresql+psycopg://u@127.0.0.1:{port}/db", "x")
