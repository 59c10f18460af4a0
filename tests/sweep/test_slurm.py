"""Sweeps on a real SLURM cluster through ``hydra/launcher=slurm`` (Hydra's submitit launcher with
the suite's preemption settings): jobs that share a dense source, preemption both ways with the
cell resumed from its checkpoint, cancelled and timed-out jobs, a failing cell inside a job.

Needs a running cluster with accounting (``sudo bash .ci/slurm/up.sh`` starts a single-node one,
as ``.ci/run`` does); skipped with that message where there is none. Each job takes one CPU."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from benchmarks import PROJECT_ROOT as ROOT
from benchmarks.tracking.schema import MASKS, RESUME_POINT, RESUMED_FROM, artifact
from tests.helpers import smoke_command, sqlite_uri, store_runs

pytestmark = pytest.mark.slow
START_HINT = "start a single-node cluster with `sudo bash .ci/slurm/up.sh` (Debian, see README)"


def _slurm_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "no SLURM here (sbatch not on PATH)"
    for probe in (["scontrol", "ping"], ["sacct", "-n", "-X", "-S", "now"]):
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        if result.returncode != 0 or "DOWN" in result.stdout:
            said = (result.stdout + result.stderr).strip().splitlines() or ["(no output)"]
            return f"`{' '.join(probe)}` says {said[0][:200]!r}"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> None:
    problem = _slurm_problem()
    if problem:
        pytest.skip(f"{problem}; {START_HINT}")


def multirun(tmp: Path, name: str, *overrides: str) -> list[str]:
    """``python -m benchmarks.run -m`` of smoke cells as SLURM jobs named ``name``."""
    launcher = ("hydra/launcher=slurm", "hydra.launcher.partition=debug")
    return smoke_command(tmp, *launcher, f"hydra.launcher.name={name}", *overrides, multirun=True)


def runs(tmp: Path) -> list[Run]:
    return store_runs(sqlite_uri(tmp))


def statuses(tmp: Path) -> Counter:
    return Counter((r.data.tags["method"], r.info.status) for r in runs(tmp))


def running_cells(tmp: Path) -> int:
    return sum(r.info.status == "RUNNING" for r in runs(tmp))


def jobs(name: str) -> dict[str, str]:
    """Job id -> state of this test's queued and running jobs (squeue: sacct lags)."""
    listed = subprocess.run(
        ["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split() for line in listed.splitlines())


def wait_until(condition: Callable[[], object], what: str, process: subprocess.Popen, limit=300):
    deadline = time.monotonic() + limit
    while not (found := condition()):
        assert process.poll() is None, f"the sweep ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {limit} s"
        time.sleep(0.5)
    return found


def start(command: list[str], tmp: Path) -> subprocess.Popen:
    log = (tmp / "sweep.log").open("w")
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, tmp: Path, limit: int = 600) -> str:
    process.wait(timeout=limit)
    return (tmp / "sweep.log").read_text()


def test_jobs_of_a_sweep_train_every_cell_once_with_a_dense_source_shared_across_jobs(tmp_path):
    """Two jobs start at once; the pretrained job's dense source is the dense job's cell: one of
    them trains it and the other waits for it."""
    command = multirun(
        tmp_path, "share", "method=dense,disparse_pretrained", "sparsity=0.5", "seed=0"
    )
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert statuses(tmp_path) == Counter(
        {("dense", "FINISHED"): 1, ("disparse_pretrained", "FINISHED"): 1}
    )
    assert len(list((tmp_path / "multi" / ".submitit").glob("*_[01]"))) == 2  # two array jobs
    assert "disparse_pretrained" in (tmp_path / "results" / "leaderboard.md").read_text()


def resumed_chain(tmp: Path) -> list[Run]:
    """The cell's runs, oldest first, each resumed from the one before."""
    by_id = {r.info.run_id: r for r in runs(tmp)}
    (last,) = [r for r in by_id.values() if r.info.status == "FINISHED"]
    chain = [last]
    while RESUMED_FROM in chain[0].data.tags:
        chain.insert(0, by_id[chain[0].data.tags[RESUMED_FROM]])
    return chain


def checkpointed_run(tmp: Path, after: set[str]) -> Run | None:
    """A RUNNING run, not in ``after``, that has saved a checkpoint."""
    for run in runs(tmp):
        if run.info.status == "RUNNING" and RESUME_POINT in run.data.tags:
            return None if run.info.run_id in after else run
    return None


def masks_of(run: Run, tmp: Path) -> dict[str, torch.Tensor]:
    folder = tmp / "masks" / run.info.run_id
    folder.mkdir(parents=True)
    local = MlflowClient(sqlite_uri(tmp)).download_artifacts(
        run.info.run_id, artifact(MASKS), str(folder)
    )
    return torch.load(local, weights_only=True)["masks"]


def test_a_preempted_job_is_requeued_and_resumes_its_cell_exactly_both_ways(tmp_path):
    """First submitit's way (``scancel --signal=TERM``, what ``job._interrupt()`` sends with the
    suite's preemption signal), then SLURM's own: a job on the higher-priority partition that
    needs every CPU. Each time the cell saves a checkpoint, its run is KILLED, the job is
    requeued and the next run of the cell goes on after the checkpoint; the masks and test
    metrics equal those of the same cell run without interruption."""
    cell = ("method=rigl", "sparsity=0.5", "seed=0", "protocol.steps=1500")
    cell += ("protocol.checkpoint_every=100",)
    process = start(multirun(tmp_path, "preempt", *cell), tmp_path)
    first = wait_until(lambda: checkpointed_run(tmp_path, set()), "checkpoint", process)
    (job,) = wait_until(lambda: jobs("preempt"), "running job", process)
    subprocess.run(["scancel", "--signal=TERM", job], check=True)
    second = wait_until(
        lambda: checkpointed_run(tmp_path, {first.info.run_id}), "resumed checkpoint", process
    )
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout
    urgent = ["sbatch", "-p", "debug-urgent", "-c", cpus.split()[0], "-o", str(tmp_path / "urgent")]
    urgent += ["--wrap", "sleep 2"]
    subprocess.run(urgent, check=True, capture_output=True)
    log = finish(process, tmp_path)
    assert process.returncode == 0, log[-3000:]

    chain = resumed_chain(tmp_path)
    assert [r.info.status for r in chain] == ["KILLED", "KILLED", "FINISHED"], log[-3000:]
    assert chain[1].info.run_id == second.info.run_id
    client = MlflowClient(sqlite_uri(tmp_path))
    for killed, resumed in itertools.pairwise(chain):
        assert "SIGTERM: stopped after step" in killed.data.tags["failure_reason"]
        saved = int(killed.data.tags[RESUME_POINT].split()[-1])  # "phase 0 step N"
        history = client.get_metric_history(resumed.info.run_id, "train/loss")
        assert min(m.step for m in history) > saved  # nothing before the checkpoint again

    alone = tmp_path / "alone"
    uninterrupted = subprocess.run(
        smoke_command(alone, *cell), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    (reference,) = runs(alone)
    test_metrics = {k: v for k, v in chain[-1].data.metrics.items() if k.startswith("test/")}
    assert test_metrics and test_metrics == {
        k: v for k, v in reference.data.metrics.items() if k.startswith("test/")
    }
    resumed_masks, reference_masks = masks_of(chain[-1], tmp_path), masks_of(reference, alone)
    assert resumed_masks.keys() == reference_masks.keys()
    assert all(torch.equal(resumed_masks[k], reference_masks[k]) for k in reference_masks)


def test_a_cancelled_and_a_timed_out_job_leave_their_cells_killed_and_a_rerun_finishes_them(
    tmp_path,
):
    """One job is cancelled (scancel), the other reaches its one-minute limit without requeues
    left: neither cell is left RUNNING, each KILLED run says why, and running the sweep again
    finishes exactly those two cells."""
    cells = ("method=dense,random", "sparsity=0.5", "seed=0", "protocol.steps=6000")
    checkpoints = "protocol.checkpoint_every=500"
    limits = ("hydra.launcher.timeout_min=1", "hydra.launcher.max_num_timeout=0")
    limits += ("hydra.launcher.signal_delay_s=15",)
    process = start(
        multirun(
            tmp_path, "limits", *cells, checkpoints, *limits, "hydra.launcher.signal_delay_s=15"
        ),
        tmp_path,
    )
    wait_until(lambda: running_cells(tmp_path) == 2, "two running cells", process)
    cancelled = sorted(wait_until(lambda: jobs("limits"), "running jobs", process))[1]  # random
    subprocess.run(["scancel", cancelled], check=True)
    log = finish(process, tmp_path)
    assert process.returncode != 0  # the multirun reports its two unfinished jobs
    first = runs(tmp_path)
    assert Counter(r.info.status for r in first) == Counter({"KILLED": 2}), log[-3000:]
    assert all(r.data.tags["failure_reason"] for r in first)

    rerun = subprocess.run(
        multirun(tmp_path, "limits", *cells, checkpoints), cwd=ROOT, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert statuses(tmp_path) == Counter(
        {
            ("dense", "KILLED"): 1,
            ("random", "KILLED"): 1,
            ("dense", "FINISHED"): 1,
            ("random", "FINISHED"): 1,
        }
    )


def test_a_cell_that_fails_inside_a_job_is_failed_with_its_reason_and_the_rest_finish(tmp_path):
    """A finetuning learning rate of 1e6 makes the magnitude cells diverge; the job's dense cells
    (the sources, seeds 0 and 1) still finish, and so does the multirun."""
    command = multirun(
        tmp_path,
        "failing",
        "method=magnitude",
        "sweep.seeds=[0,1]",
        "sparsity=0.5",
        "protocol.finetune_lr=1e6",
    )
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = runs(tmp_path)
    assert statuses(tmp_path) == Counter({("dense", "FINISHED"): 2, ("magnitude", "FAILED"): 2})
    reasons = [r.data.tags["failure_reason"] for r in found if r.info.status == "FAILED"]
    assert all(reason.startswith("DivergenceError: loss is") for reason in reasons), reasons
