"""Opening the MLflow store: a bad URI is a clear error before MLflow's long retries."""

from __future__ import annotations

import socket

import pytest

from benchmarks.tracking import Tracker


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
