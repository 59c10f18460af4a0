"""A method, a model and a dataset in the user's own package: the package of
``docs/extending.md``, written from that page's code blocks, installed with pip into a temp
folder (entry points in its dist-info) and run as a smoke cell by ``python -m benchmarks.run``
in a fresh interpreter, without any file of this project changed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from benchmarks import PROJECT_ROOT
from core.plugins import PluginError, load_plugin_modules

GUIDE = PROJECT_ROOT / "docs" / "extending.md"
EMPTY_MODULES = ("my_mtl_plugin/__init__.py", "my_mtl_plugin/conf/__init__.py")


def guide_files() -> dict[str, str]:
    """Every code block of the guide whose first line is ``# <path>``: path -> text."""
    files = {}
    for block in re.findall(r"```(?:python|yaml|toml)\n(.*?)```", GUIDE.read_text(), re.DOTALL):
        first, _, rest = block.partition("\n")
        if re.fullmatch(r"# (pyproject\.toml|my_mtl_plugin/\S+)", first):
            files[first[2:]] = rest
    return files


def write_package(folder: Path) -> Path:
    for relative, text in guide_files().items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    for relative in EMPTY_MODULES:
        (folder / relative).touch()
    return folder


def write_npz_dataset(root: Path, sizes: dict[str, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split, count in sizes.items():
        (root / split).mkdir(parents=True)
        for i in range(count):
            seg = rng.integers(0, 7, (24, 32))
            image = (seg[..., None] * 30 + rng.integers(0, 40, (24, 32, 3))).astype(np.uint8)
            depth = (1.0 + seg + rng.random((24, 32))).astype(np.float32)
            np.savez(root / split / f"{i:03d}.npz", image=image, seg=seg, depth=depth)


def test_the_guide_shows_every_file_of_the_package():
    assert set(guide_files()) == {
        "pyproject.toml",
        "my_mtl_plugin/my_method.py",
        "my_mtl_plugin/my_model.py",
        "my_mtl_plugin/my_dataset.py",
        "my_mtl_plugin/conf/method/my_method.yaml",
        "my_mtl_plugin/conf/model/my_model.yaml",
        "my_mtl_plugin/conf/dataset/my_dataset.yaml",
    }


@pytest.mark.slow
def test_an_installed_plugin_package_runs_a_smoke_cell_with_its_method_model_and_dataset(
    tmp_path,
):
    package = write_package(tmp_path / "my_mtl_plugin")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(package)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert (site / "my_mtl_plugin" / "my_method.py").exists()
    write_npz_dataset(tmp_path / "data", {"train": 16, "val": 8, "test": 8})
    env = {**os.environ, "PYTHONPATH": str(site), "MLFLOW_TRACKING_URI": ""}
    store = f"sqlite:///{tmp_path}/store.db"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "experiment=smoke", "method=my_method",
         "model=my_model", "dataset=my_dataset", f"dataset.root={tmp_path / 'data'}",
         "sweep.sparsities=[0.9]", f"tracking.uri={store}", f"results_dir={tmp_path / 'results'}",
         "workers=1", "estimate=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    runs = mlflow.MlflowClient(store).search_runs(
        [e.experiment_id for e in mlflow.MlflowClient(store).search_experiments()]
    )
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 1
    params = finished[0].data.params
    assert (params["method.name"], params["model.name"], params["dataset.name"]) == (
        "my_method", "my_model", "my_dataset",
    )  # fmt: skip
    assert abs(finished[0].data.metrics["sparsity/overall"] - 0.9) < 0.002

    listed = subprocess.run(
        [sys.executable, "-m", "benchmarks.tools.methods_info"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "== my_method (static) ==" in listed.stdout
    docs = subprocess.run(
        [sys.executable, "-m", "benchmarks.tools.config_docs", "--check"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert docs.returncode == 0, "the project's docs must not list a plugin's method"
    asked = subprocess.run(
        [sys.executable, "-m", "benchmarks.tools.config_docs", "--plugins"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "| `my_method` | `scoring_batches` | `16` |" in asked.stdout
    assert "`snip`" not in asked.stdout


def test_a_plugin_that_fails_to_import_is_named_with_its_distribution(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mtl_sparse_bench.methods]\nbad = broken_plugin_mod\n")
    (tmp_path / "broken_plugin_mod.py").write_text("raise ImportError('needs torch 9')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"bad = 'broken_plugin_mod' of broken-plugin.*torch 9"):
        load_plugin_modules("method")
    assert load_plugin_modules("dataset") == []
