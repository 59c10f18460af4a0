"""Hydra launchers run the benchmark's jobs for real: joblib (local processes) and submitit's
local executor (the code path of submitit_slurm without a cluster). Each cell FINISHED once."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_benchmark

pytestmark = pytest.mark.slow


def finished_per_cell(uri: str) -> Counter:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mtl-sparse-bench")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    return Counter((r.data.tags["method"], r.data.tags["sparsity"]) for r in runs)


def multirun(tmp: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python -m benchmarks.run -m`` of the smoke experiment, seed 0, into ``tmp``."""
    return run_benchmark(tmp, "seed=0", *overrides, multirun=True)


@pytest.mark.parametrize(
    "launcher",
    [
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        ["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1"],
    ],
    ids=["joblib", "submitit_local"],
)
def test_a_launcher_multirun_trains_every_cell_once(tmp_path, launcher):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # two jobs; magnitude's needs dense's model of the same seed
    result = multirun(tmp_path, "method=dense,magnitude", *launcher)
    assert result.returncode == 0, result.stderr[-3000:]
    assert finished_per_cell(uri) == Counter(
        {("dense", "0"): 1, ("magnitude", "0.5"): 1, ("magnitude", "0.9"): 1}
    )
    assert (tmp_path / "results" / "leaderboard.md").exists()  # written once, after all jobs


def test_workers_above_one_under_a_launcher_is_a_clear_error(tmp_path):
    result = multirun(tmp_path, "method=dense", "workers=2", "hydra/launcher=joblib")
    assert "workers=2 under a Hydra launcher" in result.stdout + result.stderr
