"""Code changes, as a user makes them: a finished cell whose code changed is stale; the sweep
names it, reuses it by default with that warning, the leaderboard marks its row, rerun=stale
recomputes exactly the stale cells and rerun=all every cell. Old runs stay in the store."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmarks import PROJECT_ROOT

pytestmark = pytest.mark.slow
PACKAGES = ("benchmarks", "methods", "datasets", "core")
SNIP_SCORES = "return connection_sensitivity(ctx, self.options.scoring_batches)"


def project_copy(tmp: Path) -> Path:
    """The project's packages in ``tmp/project``: code the test may edit."""
    root = tmp / "project"
    for package in PACKAGES:
        shutil.copytree(
            PROJECT_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return root


def sweep(root: Path, tmp: Path, *overrides: str) -> str:
    """The static group (dense + 5 prune-at-init methods) at 50%, smoke protocol, from the copy."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "experiment=smoke",
        "sweep.kinds=[static]",
        "sparsity=0.5",
        "workers=1",
        f"tracking.uri=sqlite:///{tmp}/mlflow.db",
        f"results_dir={tmp}/results",
        f"dataset.cache_dir={tmp}/cache",
        f"hydra.run.dir={tmp}/out",
        *overrides,
    ]
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy, not the installed checkout
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def finished_per_method(tmp: Path) -> Counter:
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    experiment = client.get_experiment_by_name("mtl-sparse-bench")
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
    return Counter(r.data.tags["method"] for r in runs)


def test_changed_scoring_code_marks_exactly_that_methods_cells_stale(tmp_path):
    root = project_copy(tmp_path)
    first = sweep(root, tmp_path)
    assert "6 ran, 0 skipped" in first and "stale" not in first
    snip = root / "methods" / "snip.py"
    source = snip.read_text()
    assert SNIP_SCORES in source
    snip.write_text(
        source.replace(
            SNIP_SCORES,
            f"scores = {SNIP_SCORES[7:]}\n        return {{k: 2 * v for k, v in scores.items()}}",
        )
    )

    reused = sweep(root, tmp_path)
    assert "0 ran, 6 skipped" in reused
    assert "1 finished cell(s) were computed by other code (stale): snip sparsity=0.50" in reused
    board = (tmp_path / "results" / "leaderboard.md").read_text()
    stale_rows = [line for line in board.splitlines() if "§" in line and line.startswith("|")]
    # the stale row is snip's (marked † too when its seed broke: smoke trains 6 steps)
    assert len(stale_rows) == 1 and re.search(r"\| snip († )?§", stale_rows[0]), stale_rows

    recomputed = sweep(root, tmp_path, "rerun=stale")
    assert "1 ran, 5 skipped" in recomputed
    assert finished_per_method(tmp_path)["snip"] == 2  # the stale run is kept
    assert "§" not in (tmp_path / "results" / "leaderboard.md").read_text()

    everything = sweep(root, tmp_path, "rerun=all")
    assert "6 ran, 0 skipped" in everything
    assert finished_per_method(tmp_path) == {"snip": 3} | {
        m: 2 for m in ("dense", "disparse_static", "grasp", "random", "synflow")
    }


def test_smoke_writes_its_own_store_and_results_folder(tmp_path):
    """From any folder: results/ and mlflow.db there are left alone."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "leaderboard.md").write_text("the default sweep's leaderboard")
    command = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "experiment=smoke",
        "method=random",
        "sparsity=0.5",
        f"hydra.run.dir={tmp_path}/out",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in results.iterdir()) == ["leaderboard.md"]
    assert (results / "leaderboard.md").read_text() == "the default sweep's leaderboard"
    assert not (tmp_path / "mlflow.db").exists()
    assert (tmp_path / "smoke" / "mlflow.db").exists()
    assert (tmp_path / "smoke" / "leaderboard.md").exists()
