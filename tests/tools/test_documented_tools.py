"""The README's tools, run as a user runs them but shortened to seconds (in this process): what
they print has the documented structure, and its deterministic figures (counts, MACs, weights
kept, cell counts) agree with values computed here independently. No timing is asserted."""

from __future__ import annotations

import re

import pytest
import torch

from benchmarks.tools import convergence, methods_info, perf
from core.tasks import make_task
from methods.masks import prunable_parameters
from methods.networks import model_parts
from methods.registry import get_method, list_methods, method_help
from tests.helpers import smoke_cells

NUMBER = r"[-+]?\d+(?:\.\d+)?"


def figures(line: str) -> list[float]:
    return [float(n) for n in re.findall(NUMBER, line.replace(",", ""))]


def overrides(values: list[str]) -> list[str]:
    return [f"--override={value}" for value in values]


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_methods_info_lists_every_method_with_its_kind_paper_and_options():
    text = methods_info.describe()
    for name in list_methods():
        cls = get_method(name)
        assert f"== {name} ({cls.kind.value}) ==" in text
        assert cls.paper in text
        for option, default, _ in method_help(name):
            assert re.search(rf"^{re.escape(option)}\s+{re.escape(str(default))}", text, re.M), (
                name,
                option,
            )
    assert text.count("== ") == len(list_methods())


def test_perf_prints_the_step_ratio_the_cell_times_and_the_inference_table(tmp_path, capsys):
    smoke = ["experiment=smoke", f"dataset.cache_dir={tmp_path}/cache"]
    quick = ["--device", "cpu", "--steps", "2", "--rounds", "1"]
    perf.main([*quick, "--inference", "--inference-models", "small_cnn", *overrides(smoke)])
    out = capsys.readouterr().out
    (ratio,) = [line for line in out.splitlines() if "masked / dense =" in line]
    assert figures(ratio.split("=")[1])[0] > 0
    table = [line.split("|") for line in out.splitlines() if line.startswith("|")]
    rows = {cells[1].strip(): cells[2:] for cells in table}
    dense_kept, dense_stored = figures(rows["dense"][0])
    network = model_parts("small_cnn", {}).hard_sharing(
        (make_task("seg", num_classes=7), make_task("normal"))
    )
    assert dense_stored == sum(p.numel() for p in prunable_parameters(network).values())
    assert dense_kept == dense_stored and figures(rows["dense"][1])[-1] == 1.0
    masked_kept, masked_stored = figures(rows["unstructured 90% mask"][0])
    assert masked_stored == dense_stored
    assert masked_kept / masked_stored == pytest.approx(0.1, abs=0.01)
    assert figures(rows["unstructured 90% mask"][1])[-1] == 1.0  # masks execute every MAC
    for share in (50, 70):
        kept, stored = figures(rows[f"{share}% of weights as channels"][0])
        assert kept == stored  # removed, not zeroed
        assert 1 - stored / dense_stored == pytest.approx(share / 100, abs=0.05)
        assert figures(rows[f"{share}% of weights as channels"][1])[-1] < 1.0
    cells = smoke_cells(*smoke)
    assert f"default sweep: {len(cells)} cells, estimated" in out
    for kind in ("dense", "static", "pretrained", "structured"):
        assert re.search(rf"^  {kind}\s+{NUMBER} s$", out, re.M), kind


def test_convergence_trains_dense_twice_as_long_and_prints_each_seeds_change(tmp_path, capsys):
    overrides = [
        "experiment=smoke",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"results_dir={tmp_path}/results",
        f"dataset.cache_dir={tmp_path}/cache",
        "sweep.seeds=[0,1]",
        "workers=1",
    ]
    assert convergence.main([*overrides, "--factor", "2", "--threshold", "1000"]) == 0
    out = capsys.readouterr().out
    assert "dense: delta-m of 12 steps against 6 steps, same seed" in out  # smoke: 6 steps
    changes = [figures(line)[-1] for line in out.splitlines() if line.startswith("  seed ")]
    assert len(changes) == 2
    (summary,) = [line for line in out.splitlines() if line.startswith("  mean ")]
    assert figures(summary)[0] == pytest.approx(sum(changes) / 2, abs=0.006)
    assert "converged (threshold 1000 points)" in summary and "NOT" not in summary
    # a second call reuses the four finished cells: same figures
    assert convergence.main([*overrides, "--factor", "2", "--threshold", "0"]) == 0
    again = capsys.readouterr().out
    assert [figures(line)[-1] for line in again.splitlines() if line.startswith("  seed ")] == (
        changes
    )
    assert "NOT converged (threshold 0 points)" in again
