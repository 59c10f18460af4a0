"""Only the first SIGTERM stops a sweep process (``benchmarks.sweep.first_sigterm``), with real
signals sent to this process and a real SQLite store: a second one that arrived while the stopped
run was being marked KILLED (a process pool terminates its other workers once one has stopped)
left that run RUNNING."""

from __future__ import annotations

import os
import signal

import pytest

from benchmarks.sweep.first_sigterm import install_first_sigterm_only
from benchmarks.tracking.keys import CellKey
from benchmarks.tracking.store import Tracker


@pytest.fixture(autouse=True)
def restore_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def test_the_first_sigterm_stops_and_the_next_ones_are_ignored():
    install_first_sigterm_only()
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)  # would raise again, or end the process
    os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_a_second_sigterm_while_the_run_is_marked_killed_does_not_leave_it_running(
    tmp_path, monkeypatch
):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "x")
    end = tracker.end

    def sigterm_then_end(run_id: str, status: str, reason: str) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the pool's terminate() of a stopping worker
        end(run_id, status, reason)

    monkeypatch.setattr(tracker, "end", sigterm_then_end)
    install_first_sigterm_only()
    with pytest.raises(KeyboardInterrupt), tracker.run("cell", {}, {}, CellKey("a", {}, "c")):
        os.kill(os.getpid(), signal.SIGTERM)
    (run,) = tracker.client.search_runs([tracker.experiment_id])
    assert run.info.status == "KILLED"
    assert "SIGTERM" in run.data.tags["failure_reason"]
