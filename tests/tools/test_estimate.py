"""The wall-time estimate (issue 25): step counts by hand for each kind of pipeline, the
arithmetic of a cell's time on given measurements, and the command on the smoke sweep."""

from __future__ import annotations

import pytest

from benchmarks.cells.builders import cell_method
from benchmarks.sweep.estimate import SettingSpeed, planned_steps
from benchmarks.tools import estimate
from tests.helpers import smoke_cells


def default_cell(method: str, sparsity: float = 0.9):
    from benchmarks.sweep.expand import expand_sweep
    from benchmarks.tools.overrides import default_config

    return expand_sweep(default_config(f"method={method}", f"sparsity={sparsity}", "seed=0"))[0]


@pytest.mark.parametrize(
    ("method", "steps"),
    [
        ("dense", 800),  # protocol.steps
        ("snip", 800),
        ("magnitude", 400),  # protocol.finetune_steps after the dense source's 800
        ("imp", 400 + 2 * 60),  # three rounds: two intermediate fine-tunes of round_steps 60
        ("lth", 400 + 400),  # two rounds: one intermediate retraining of finetune_steps
        ("dense_same_steps", 800 + 2 * 400),
    ],
)
def test_a_cells_steps_are_counted_as_its_pipeline_runs_them(method, steps):
    cell = default_cell(method)
    assert planned_steps(cell_method(cell), cell.protocol_options, cell.sparsity) == steps


def test_a_step_waits_for_the_loader_only_when_its_workers_are_too_few():
    inline = SettingSpeed(
        step_s=0.1, train_read_s=0.01, eval_forward_s=0.0, eval_read_s=0.0, loader_workers=0
    )
    assert inline.train_step_s(8) == pytest.approx(0.1 + 8 * 0.01)  # read, then compute
    fed = SettingSpeed(0.1, 0.01, 0.0, 0.0, loader_workers=4)
    assert fed.train_step_s(8) == 0.1  # 4 workers read 8 images in 0.02 s: the step waits not
    starved = SettingSpeed(0.01, 0.01, 0.0, 0.0, loader_workers=2)
    assert starved.train_step_s(8) == pytest.approx(0.04)  # 8 x 0.01 / 2
    assert SettingSpeed(0.0, 0.0, 0.002, 0.004, 2).pass_s(10) == pytest.approx(10 * 0.002)


def test_the_command_prints_the_wall_time_of_a_sweep(capsys):
    assert smoke_cells("method=dense")  # the smoke experiment composes
    assert estimate.main(["experiment=smoke", "method=dense", "--workers", "1", "4"]) == 0
    out = capsys.readouterr().out
    assert "estimated wall time on 1 worker(s)" in out and "on 4 worker(s)" in out


def test_a_sweep_logs_its_estimate_first_when_asked(tmp_path, caplog):
    import logging

    from benchmarks.sweep.main import sweep
    from tests.helpers import smoke_config

    caplog.set_level(logging.INFO)
    cfg = smoke_config(
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"results_dir={tmp_path}/results",
        "method=dense",
        "seed=0",
        "estimate=true",
        "leaderboard.enabled=false",
    )
    sweep(cfg)
    assert "before running 1 cell(s)" in caplog.text
    assert "estimated wall time on" in caplog.text


def test_a_bad_estimate_option_is_a_configuration_error(tmp_path, caplog):
    from benchmarks.sweep.main import sweep
    from tests.helpers import smoke_config

    cfg = smoke_config(f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", "estimate=sometimes")
    with pytest.raises(SystemExit) as stopped:
        sweep(cfg)
    assert stopped.value.code == 2 and "estimate='sometimes': choose auto" in caplog.text
