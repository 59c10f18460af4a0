"""Opening the MLflow store: a bad URI is a clear error before MLflow's long retries."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from benchmarks.tracking.claims import CellTakenError
from benchmarks.tracking.keys import CellKey
from benchmarks.tracking.run_log import heartbeat_period
from benchmarks.tracking.store import Tracker


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_server_is_named_without_mlflows_retries():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match="no MLflow server answers there"):
        Tracker(uri, "x")


def test_sqlite_file_in_a_missing_folder_is_named(tmp_path):
    uri = f"sqlite:///{tmp_path}/missing/mlflow.db"
    with pytest.raises(RuntimeError, match=f"the folder {tmp_path}/missing does not exist"):
        Tracker(uri, "x")


def test_unreachable_database_fails_in_seconds():
    uri = f"postgresql://u@127.0.0.1:{free_port()}/db"
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"no database server accepts connections at 127\.0"):
        Tracker(uri, "x")
    assert time.monotonic() - started < 10  # MLflow's own retries took 419 s


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
    with tracker.run("cell", {}, {}, CELL) as run:
        first = float(tracker.client.get_run(run.run_id).data.tags["heartbeat"])
        time.sleep(2.5)  # the cell is busy elsewhere: no metrics, no flush
        later = float(tracker.client.get_run(run.run_id).data.tags["heartbeat"])
    assert later >= first + 2


@pytest.mark.parametrize("stale_after_s, period", [(600, 30.0), (120, 30.0), (60, 15.0), (2, 0.5)])
def test_the_heartbeat_beats_several_times_within_the_stale_period(stale_after_s, period):
    assert heartbeat_period(stale_after_s) == period
