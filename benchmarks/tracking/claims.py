"""Who runs a cell: a sweep claims a cell through the store itself (write, then read), waits for
a cell another sweep is running, and marks KILLED the runs whose process is gone or whose
heartbeat stopped (orphans), so their cells run again."""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from benchmarks.tracking.keys import CellKey, Reuse
from benchmarks.tracking.run_log import now
from benchmarks.tracking.schema import HEARTBEAT, OWNER_HOST, OWNER_PID

CLAIM_ATTEMPTS = 20  # collisions in a row before a claim gives up


@contextmanager
def ended_if_stopped(claims: CellClaims, run_id: str, when: str) -> Iterator[None]:
    """A run stopped by a signal (SIGTERM, Ctrl-C) inside the block ends KILLED, not RUNNING:
    the moments between creating a run and the body that marks it (the claim's read, starting
    its heartbeat)."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as error:
        claims.end(run_id, "KILLED", f"{type(error).__name__} {when}: {error}")
        raise


class CellTakenError(RuntimeError):
    """Another sweep is running, or has finished, this cell: nothing to do here."""


class CellClaims:
    """Claims, waits and orphan reaping over a store's runs (the ``Tracker`` has these)."""

    # Provided by the Tracker: the store's client and experiment, runs_of, search and end.
    client: MlflowClient
    experiment_id: str
    stale_after_s: float
    reuse: Reuse
    runs_of: Callable[..., list[Run]]
    search: Callable[..., Iterator[Run]]
    end: Callable[[str, str, str], None]

    def _claim(self, name: str, tags: Mapping[str, str], key: CellKey) -> Run:
        """Create the cell's run and keep it only if no other live or finished run of the
        cell is visible right after: write, then read. Of two sweeps that start the cell at
        once, the one that reads second always sees both, so at most one keeps its run (start
        times cannot decide it: a run's row may be committed after a later-started run's
        read). When both see both, both delete theirs; each then waits a random moment and
        tries again if the cell is still free, so one of them wins. Raises
        ``CellTakenError`` when another run holds the cell."""
        jitter = random.Random(f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}")
        for _attempt in range(CLAIM_ATTEMPTS):
            run = self.client.create_run(
                self.experiment_id, run_name=name, tags={**tags, HEARTBEAT: now()}
            )
            with ended_if_stopped(self, run.info.run_id, "while claiming its cell"):
                others = [r for r in self.live_or_finished(key) if r.info.run_id != run.info.run_id]
            if not others:
                return run
            self.client.delete_run(run.info.run_id)
            time.sleep(jitter.uniform(0.05, 1.0))
            holders = self.live_or_finished(key)
            if holders:
                raise CellTakenError(
                    f"cell {key.cell_id} is {holders[0].info.status.lower()} in run "
                    f"{holders[0].info.run_id}, started by another sweep"
                )
        raise CellTakenError(
            f"cell {key.cell_id}: {CLAIM_ATTEMPTS} claims collided with other sweeps; "
            "rerun the sweep to train it"
        )

    def live_or_finished(self, key: CellKey) -> list[Run]:
        """Runs of this cell that finished (and this sweep takes as done) or are still running
        (not orphans)."""
        return [
            r
            for r in self.runs_of(key)
            if (r.info.status == "FINISHED" and self.reuse.accepts(r, key))
            or (
                r.info.status == "RUNNING"
                and _orphan_reason(r.data.tags, self.stale_after_s) is None
            )
        ]

    def wait_for_other_sweep(self, key: CellKey, poll_s: float = 5.0) -> Run | None:
        """The cell's finished run, waiting for it while another sweep is running the cell;
        None when no run of the cell is finished or alive (then the caller trains it)."""
        while True:
            runs = self.live_or_finished(key)
            finished = [r for r in runs if r.info.status == "FINISHED"]
            if finished or not runs:
                return finished[0] if finished else None
            time.sleep(poll_s)

    def reap_orphans(self) -> list[str]:
        """Mark KILLED the RUNNING runs whose process is gone (it ran on this host and its pid
        is dead: kill -9, a crash) or whose heartbeat is older than ``stale_after_s`` (another
        host); returns their names. Their cells then run again, as any unfinished cell does."""
        reaped = []
        for run in list(self.search("attributes.status = 'RUNNING'")):
            reason = _orphan_reason(run.data.tags, self.stale_after_s)
            if reason is None:
                continue
            self.end(run.info.run_id, "KILLED", reason)
            reaped.append(f"{run.info.run_name} ({reason})")
        return reaped


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _orphan_reason(tags: Mapping[str, str], stale_after_s: float) -> str | None:
    """Why a RUNNING run is an orphan, or None when it may still be alive."""
    if tags.get(OWNER_HOST) == socket.gethostname() and OWNER_PID in tags:
        if not _pid_alive(int(tags[OWNER_PID])):
            return f"its process {tags[OWNER_PID]} on this host is gone (killed or crashed)"
        return None
    age = time.time() - float(tags.get(HEARTBEAT, 0))
    if age > stale_after_s:
        return f"no heartbeat for {age:.0f} s (tracking.stale_after_s={stale_after_s:g})"
    return None
