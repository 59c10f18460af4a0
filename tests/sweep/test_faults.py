"""Killed sweeps, as they happen: SIGTERM (SLURM preemption) and kill -9, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmarks import PROJECT_ROOT as ROOT
from tests.helpers import run_benchmark, sqlite_uri, store_runs, sweep_command

pytestmark = pytest.mark.slow


def runs_by_status(tmp: Path) -> Counter:
    return Counter((r.data.tags["seed"], r.info.status) for r in store_runs(sqlite_uri(tmp)))


def start_and_wait_until_running(tmp: Path, seed: str, *overrides: str) -> subprocess.Popen:
    process = subprocess.Popen(
        sweep_command(tmp, *overrides), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while runs_by_status(tmp)[(seed, "RUNNING")] == 0:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the cell never started"
        time.sleep(0.5)
    return process


def test_sigterm_marks_the_running_cell_killed(tmp_path):
    process = start_and_wait_until_running(tmp_path, "0", "seed=0", "protocol.steps=5000")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) != 0
    assert runs_by_status(tmp_path) == Counter({("0", "KILLED"): 1})


def test_sigterm_stops_every_worker_and_no_queued_cell_starts(tmp_path):
    seeds = ("sweep.seeds=[0,1,2,3,4,5]", "protocol.steps=5000")
    process = start_and_wait_until_running(tmp_path, "0", *seeds, "workers=2")
    deadline = time.monotonic() + 120
    while runs_by_status(tmp_path)[("1", "RUNNING")] == 0:
        assert time.monotonic() < deadline, "the second worker's cell never started"
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) != 0
    # the two running cells end KILLED; the cells the pool had queued never start
    assert runs_by_status(tmp_path) == Counter({("0", "KILLED"): 1, ("1", "KILLED"): 1})


def test_sigterm_saves_a_checkpoint_and_the_rerun_resumes_from_it(tmp_path):
    checkpoints = ("seed=0", "protocol.steps=400", "protocol.checkpoint_every=50")
    process = start_and_wait_until_running(tmp_path, "0", *checkpoints)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    deadline = time.monotonic() + 120
    while True:  # until the first periodic checkpoint is written
        (run,) = client.search_runs(
            [client.get_experiment_by_name("mtl-sparse-bench").experiment_id]
        )
        if "resume_point" in run.data.tags:
            break
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) != 0
    killed = client.get_run(run.info.run_id)
    assert killed.info.status == "KILLED"
    assert "SIGTERM: stopped after step" in killed.data.tags["failure_reason"]
    rerun = subprocess.run(sweep_command(tmp_path, *checkpoints), cwd=ROOT, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert runs_by_status(tmp_path) == Counter({("0", "KILLED"): 1, ("0", "FINISHED"): 1})
    finished = client.search_runs([killed.info.experiment_id], "attributes.status = 'FINISHED'")[0]
    assert finished.data.tags["resumed_from_run_id"] == run.info.run_id
    step = int(killed.data.tags["resume_point"].split()[-1])  # "phase 0 step N"
    history = client.get_metric_history(finished.info.run_id, "train/loss")
    assert min(m.step for m in history) > step  # nothing before the checkpoint trained again
    assert not list((tmp_path / "mlartifacts").rglob("resume/checkpoint.pt"))  # none kept


def test_after_kill_9_a_rerun_redoes_only_the_killed_cell(tmp_path):
    long = "protocol.steps=300"
    first = subprocess.run(sweep_command(tmp_path, "seed=0", long), cwd=ROOT, capture_output=True)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    process = start_and_wait_until_running(tmp_path, "1", "sweep.seeds=[0,1]", long)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert runs_by_status(tmp_path)[("1", "RUNNING")] == 1  # what kill -9 leaves behind
    rerun = subprocess.run(
        sweep_command(tmp_path, "sweep.seeds=[0,1]", long), cwd=ROOT, capture_output=True
    )
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert "was left RUNNING: marked KILLED" in (rerun.stdout + rerun.stderr).decode()
    assert runs_by_status(tmp_path) == Counter(
        {("0", "FINISHED"): 1, ("1", "KILLED"): 1, ("1", "FINISHED"): 1}
    )


def test_two_sweeps_started_at_once_train_every_cell_exactly_once(tmp_path):
    command = sweep_command(tmp_path, "sweep.seeds=[0,1]", method="magnitude")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sweeps = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(2)
    ]
    outputs = [sweep.communicate(timeout=300)[0].decode() for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("mtl-sparse-bench")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    finished = Counter(r.data.tags["cell_id"] for r in runs if r.info.status == "FINISHED")
    methods = Counter(r.data.tags["method"] for r in runs if r.info.status == "FINISHED")
    assert methods == Counter({"dense": 2, "magnitude": 2})  # dense of seeds 0 and 1, once each
    assert set(finished.values()) == {1}
    assert all(r.info.status == "FINISHED" for r in runs)  # claims lost are deleted, not failed


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if int(fields.get("PPid", "0").strip()) == pid:
            found.append(int(status.parent.name))
    return found


def test_workers_stop_and_mark_their_runs_killed_when_the_sweep_is_killed(tmp_path):
    """kill -9 of the sweep's parent left both workers training for minutes (parent pid 1)."""
    process, workers = start_on_two_workers(
        tmp_path, subprocess.DEVNULL, "sweep.seeds=[0,1]", "protocol.steps=5000"
    )
    process.kill()
    process.wait()
    deadline = time.monotonic() + 60
    while any(Path(f"/proc/{p}").exists() and _state(p) != "Z" for p in workers):
        assert time.monotonic() < deadline, "the workers outlived their sweep"
        time.sleep(0.5)
    statuses = runs_by_status(tmp_path)
    assert statuses == Counter({("0", "KILLED"): 1, ("1", "KILLED"): 1}), statuses


def start_on_two_workers(tmp: Path, output, *overrides: str) -> tuple[subprocess.Popen, list[int]]:
    """A 2-worker sweep, once both workers run a cell; returns it and the workers' pids."""
    process = subprocess.Popen(
        sweep_command(tmp, *overrides, workers=2),
        cwd=ROOT,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while sum(n for (_, status), n in runs_by_status(tmp).items() if status == "RUNNING") < 2:
        assert process.poll() is None and time.monotonic() < deadline, "cells never started"
        time.sleep(0.5)
    workers = [p for p in children_of(process.pid) if "spawn_main" in _cmdline(p)]
    assert len(workers) == 2, workers  # the pool's workers, not its resource tracker
    return process, workers


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "Z"


def test_a_dead_worker_is_replaced_and_the_other_cells_finish(tmp_path):
    """kill -9 of one worker stopped the whole sweep ("BrokenProcessPool") and left a RUNNING
    run behind."""
    log = (tmp_path / "sweep.log").open("w")  # a file: a full pipe would stall the sweep
    process, workers = start_on_two_workers(
        tmp_path, log, "sweep.seeds=[0,1,2]", "protocol.steps=400"
    )
    os.kill(workers[0], signal.SIGKILL)
    process.wait(timeout=300)
    log.close()
    errors = (tmp_path / "sweep.log").read_text()
    assert process.returncode == 0, errors[-3000:]
    statuses = runs_by_status(tmp_path)
    finished = {seed for (seed, status), n in statuses.items() if status == "FINISHED"}
    assert finished == {"0", "1", "2"}, statuses  # every cell finished, the lost ones again
    assert sum(n for (_, status), n in statuses.items() if status == "FINISHED") == 3
    assert not any(status == "RUNNING" for _, status in statuses), statuses
    assert any(status == "KILLED" for _, status in statuses), statuses  # the dead worker's run
    # a lost cell that had finished before its future broke counts as skipped (finished)
    (summary,) = [line for line in errors.splitlines() if "sweep: " in line]
    ran, skipped = (int(summary.split(word)[0].split()[-1]) for word in (" ran", " skipped"))
    assert ran + skipped == 3 and summary.endswith("0 failed"), summary


def test_a_cell_computes_the_same_numbers_alone_and_beside_others(tmp_path):
    """dense seed 0 ended at mIoU 50.898 in the default sweep (2 workers, 1 thread each) and at
    51.093 run alone in-process (2 threads): the thread count changed the sums' order."""
    alone, beside = tmp_path / "alone", tmp_path / "beside"
    for folder, seeds, workers in (
        (alone, "seed=0", 1),  # in this process
        (beside, "sweep.seeds=[0,1]", 2),  # seed 0 on a worker, beside seed 1
    ):
        folder.mkdir()
        steps = "protocol.steps=60"
        command = sweep_command(folder, seeds, steps, method="dense", workers=workers)
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]

    def seed_0(folder: Path) -> dict[str, float]:
        client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
        experiment = client.get_experiment_by_name("mtl-sparse-bench")
        (run,) = client.search_runs([experiment.experiment_id], "tags.seed = '0'")
        assert run.data.tags["env/threads"] == "1"
        return {k: v for k, v in run.data.metrics.items() if k.startswith("test/")}

    assert seed_0(alone) == seed_0(beside)


def test_a_truncated_checkpoint_is_passed_over_and_the_cell_completes(tmp_path):
    """A checkpoint cut short made every rerun FAILED ("failed reading zip archive")."""
    checkpoints = ("seed=0", "protocol.steps=400", "protocol.checkpoint_every=50")
    process = start_and_wait_until_running(tmp_path, "0", *checkpoints)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    deadline = time.monotonic() + 120
    while not any(
        "resume_point" in r.data.tags
        for r in client.search_runs(
            [client.get_experiment_by_name("mtl-sparse-bench").experiment_id]
        )
    ):
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) != 0
    (checkpoint,) = (tmp_path / "mlartifacts").rglob("resume/checkpoint.pt")
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # cut short, as a kill mid-write
    rerun = subprocess.run(
        sweep_command(tmp_path, *checkpoints), cwd=ROOT, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "its checkpoint cannot be read" in rerun.stdout + rerun.stderr
    assert runs_by_status(tmp_path) == Counter({("0", "KILLED"): 1, ("0", "FINISHED"): 1})
    # the cell finished: no checkpoint of it is kept, the killed run's included (issue 25)
    assert not list((tmp_path / "mlartifacts").rglob("resume/checkpoint.pt"))


PNG_END = b"IEND\xaeB`\x82"  # the last chunk of a complete PNG file


def visible_files(results: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in results.iterdir() if not p.name.startswith(".")}


def board_options(uri: str, results: Path) -> list[str]:
    return ["--tracking-uri", uri, "--results-dir", str(results)]


def leaderboard_paused_at(moment: str, k: int, results: Path, uri: str) -> tuple[bool, str]:
    """Run the leaderboard until it stops itself at its ``k``-th ``moment`` ("open": an output
    file just opened for writing; "rename": just renamed into place) and kill -9 it there.
    Returns (whether it was stopped there, its stderr); it runs to the end if there is no such
    moment."""
    helper = "tests.sweep.paused_leaderboard"  # as a module: the checkout's code, from ROOT
    board = subprocess.Popen(
        [sys.executable, "-m", helper, moment, str(k), str(results), *board_options(uri, results)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status = os.waitpid(board.pid, os.WUNTRACED)  # returns when it stops or ends
    stopped = os.WIFSTOPPED(status)
    if stopped:
        board.send_signal(signal.SIGKILL)
        os.waitpid(board.pid, 0)
    board.returncode = 0 if stopped else os.waitstatus_to_exitcode(status)
    return stopped, board.stderr.read().decode()


def test_a_leaderboard_killed_mid_write_shows_one_generation_whole(tmp_path):
    """kill -9 at moments the test picks and sees happen: just after the leaderboard opened its
    first and its last output file for writing (created or truncated, nothing written), just
    after its first and its last rename, and just after its new generation took the results
    folder's place. Before that moment every visible file is the old generation's, after it every
    one is the new one's: never a mix (issue 29 D12). The next leaderboard removes the leftovers
    beside the folder."""
    uri = sqlite_uri(tmp_path)
    two_seeds = run_benchmark(tmp_path, "method=magnitude", "sparsity=0.5", "sweep.seeds=[0,1]")
    assert two_seeds.returncode == 0, two_seeds.stderr[-2000:]
    results = tmp_path / "results"
    old = visible_files(results)
    client = MlflowClient(uri)  # the store changes: the new generation differs from the old
    (dropped,) = [r for r in store_runs(uri) if r.data.tags["method"] == "magnitude"][:1]
    client.delete_run(dropped.info.run_id)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    stopped, stderr = leaderboard_paused_at("open", 10**6, fresh, uri)  # to the end: counts
    counts = stderr.strip().splitlines()[-1]
    assert not stopped and counts.startswith("opened"), stderr[-2000:]
    opened, renamed, swapped = (int(n) for n in counts.split()[1::2])
    assert swapped == 1
    new = visible_files(fresh)
    assert set(new) == set(old) and new != old
    texts = {n for n in new if not n.endswith(".png")}
    moments = [("open", 1), ("open", opened), ("rename", 1), ("rename", renamed), ("swap", 1)]
    for moment, k in moments:
        stopped, _ = leaderboard_paused_at(moment, k, results, uri)
        assert stopped, f"the leaderboard never reached its {moment} number {k}"
        visible = visible_files(results)
        generation = new if moment == "swap" else old
        assert set(visible) == set(generation), (moment, k)
        assert {n: visible[n] for n in texts} == {n: generation[n] for n in texts}, (moment, k)
        for name in set(visible) - texts:
            assert visible[name].endswith(PNG_END), (moment, k, name)
        leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".results.")]
        assert leftovers, (moment, k)  # the killed writer's generation folder
    subprocess.run(
        [sys.executable, "-m", "benchmarks.leaderboard", *board_options(uri, results)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert sorted(p.name for p in results.iterdir()) == sorted(new)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".results.")]
    assert {n: c for n, c in visible_files(results).items() if n in texts} == {
        n: new[n] for n in texts
    }
