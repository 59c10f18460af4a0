"""Two hosts on one store, as SLURM nodes are: each sweep runs under its own hostname (a UTS
namespace), so neither can check the other's process ids and only heartbeats tell a live run
from an orphan."""

from __future__ import annotations

import os
import subprocess
from collections import Counter

import pytest

from benchmarks import PROJECT_ROOT as ROOT
from tests.helpers import sqlite_uri, store_runs, sweep_command

pytestmark = pytest.mark.slow


def on_host(hostname: str, command: list[str]) -> list[str]:
    """``command`` in a new UTS namespace whose hostname is ``hostname``."""
    return ["unshare", "--uts", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *command]


@pytest.fixture(scope="module")
def hostnames_can_differ() -> None:
    probe = subprocess.run(on_host("probe", ["hostname"]), capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "probe":
        pytest.skip(f"cannot give a process its own hostname here: {probe.stderr.strip()[:200]}")


def test_a_pretrained_cell_busy_with_its_source_is_not_taken_for_an_orphan_by_another_host(
    tmp_path, hostnames_can_differ
):
    """While its dense source trains for longer than ``stale_after_s``, the pretrained cell's run
    logs nothing: without a heartbeat of its own, the other host took it for an orphan and
    trained the cell again, leaving two finished runs of one cell."""
    command = sweep_command(
        tmp_path, "tracking.stale_after_s=3", "protocol.steps=400", method="disparse_pretrained"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sweeps = [
        subprocess.Popen(
            on_host(host, command),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for host in ("node-a", "node-b")
    ]
    outputs = [sweep.communicate(timeout=600)[0] for sweep in sweeps]
    assert [s.returncode for s in sweeps] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    runs = store_runs(sqlite_uri(tmp_path))
    assert {r.data.tags["owner_host"] for r in runs} <= {"node-a", "node-b"}
    assert Counter(r.info.status for r in runs) == Counter({"FINISHED": 2}), [
        (r.data.tags["method"], r.info.status, r.data.tags.get("failure_reason")) for r in runs
    ]
    assert Counter(r.data.tags["method"] for r in runs) == Counter(
        {"dense": 1, "disparse_pretrained": 1}
    )
