"""The sweep's MLflow client (``benchmarks.tracking.client``): a signal waits for the store call
it arrived in, and a reply that broke off is asked again, against a real SQLite store and a real
HTTP server that breaks its first reply."""

from __future__ import annotations

import http.server
import json
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import pytest
from mlflow.exceptions import MlflowException

from benchmarks.tracking.client import StoreClient, signals_held
from benchmarks.training import preemption


@contextmanager
def suite_sigterm_handler() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    preemption.install()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def test_sigterm_during_a_write_stops_after_it_and_the_store_stays_writable(tmp_path):
    """The write waits on the SQLite lock another connection holds; SIGTERM arrives meanwhile.
    Raised inside the write, it lost the tag and left the lock held ("database is locked")."""
    db = tmp_path / "mlflow.db"
    client = StoreClient(f"sqlite:///{db}")
    run_id = client.create_run(client.create_experiment("x")).info.run_id
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    signal_sent = threading.Event()

    def sigterm_then_release() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        signal_sent.set()
        threading.Timer(0.5, holder.execute, ("COMMIT",)).start()

    threading.Timer(0.3, sigterm_then_release).start()
    with suite_sigterm_handler(), pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        client.set_tag(run_id, "written", "yes")  # waits for the lock, SIGTERM comes meanwhile
    assert signal_sent.is_set()
    client.set_terminated(run_id, "KILLED")  # at once: no lock left behind
    run = client.get_run(run_id)
    assert (run.data.tags["written"], run.info.status) == ("yes", "KILLED")


def test_a_second_signal_while_held_is_delivered_at_once():
    caught: list[str] = []
    with suite_sigterm_handler(), pytest.raises(KeyboardInterrupt), signals_held():
        os.kill(os.getpid(), signal.SIGTERM)
        caught.append("first held")
        os.kill(os.getpid(), signal.SIGTERM)
        caught.append("second held too")
    assert caught == ["first held"]


def test_signals_in_another_thread_are_untouched():
    handlers: list[object] = []

    def in_thread() -> None:
        with signals_held():
            handlers.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert handlers == [before]


EXPERIMENT = {"experiment": {"experiment_id": "1", "name": "x", "lifecycle_stage": "active"}}
RUN = {"run": {"info": {"run_id": "r", "experiment_id": "1", "status": "RUNNING"}}}


class BreaksFirstReply(http.server.BaseHTTPRequestHandler):
    """An MLflow REST endpoint whose first reply stops after 10 of its bytes (a server killed
    while answering); later ones are whole."""

    replies: ClassVar[list[str]] = []

    def _answer(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not self.replies:
            self.wfile.write(data[:10])
            self.replies.append("broken")
            self.close_connection = True
            return
        self.wfile.write(data)
        self.replies.append("whole")

    def do_GET(self) -> None:
        self._answer(EXPERIMENT)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(RUN)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def breaking_server() -> Iterator[str]:
    BreaksFirstReply.replies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BreaksFirstReply)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_read_whose_reply_broke_off_is_asked_again(breaking_server):
    experiment = StoreClient(breaking_server).get_experiment_by_name("x")
    assert experiment.experiment_id == "1"
    assert BreaksFirstReply.replies == ["broken", "whole"]


def test_a_call_that_would_do_it_twice_is_not_repeated(breaking_server):
    with pytest.raises(MlflowException, match="IncompleteRead"):
        StoreClient(breaking_server).create_run("1")
    assert BreaksFirstReply.replies == ["broken"]
