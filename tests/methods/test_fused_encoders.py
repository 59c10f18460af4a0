"""Cross-stitch and NDDR-CNN options: start from trained single-task networks, fusion learning
rate, per-channel stitch weights, NDDR BatchNorm momentum."""

from __future__ import annotations

import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient

from benchmarks import CONF_DIR as CONF
from benchmarks.cells.resources import CellResources
from benchmarks.cells.source import source_cell
from benchmarks.sweep.expand import expand_sweep
from benchmarks.sweep.serial import run_sweep
from benchmarks.tracking.collect import collect_runs
from benchmarks.tracking.store import Tracker
from benchmarks.training.optim import make_optimizer
from benchmarks.training.protocol import Protocol
from core.tasks import make_task
from methods.networks import model_parts
from methods.registry import build_method

TASKS = (make_task("seg", num_classes=3), make_task("normal"))


def network(name, options=None, width=4):
    torch.manual_seed(0)
    parts = model_parts("small_cnn", {"width": width})
    return build_method(name, options or {}).build_network(parts, TASKS)


@pytest.mark.parametrize("name", ["cross_stitch", "nddr_cnn"])
def test_single_task_start_loads_encoders_and_heads_and_keeps_fusion_init(name):
    method = build_method(name, {"init": "single_task"})
    assert method.start_from == "single_task"
    assert build_method(name, {}).start_from is None
    trained = network("single_task").state_dict()
    model = network(name, {"init": "single_task"})
    fusion_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("fusions")}
    method.load_start(model, trained)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in trained.items())
    assert all(torch.equal(state[k], v) for k, v in fusion_before.items())


def test_single_task_start_from_another_width_is_a_clear_error():
    method = build_method("cross_stitch", {"init": "single_task"})
    with pytest.raises(ValueError, match="does not fit cross_stitch"):
        method.load_start(network("cross_stitch"), network("single_task", width=8).state_dict())


def test_fusion_units_train_at_their_multiple_of_the_learning_rate():
    model = network("nddr_cnn", {"fusion_lr_multiplier": 100.0})
    default = yaml.safe_load((CONF / "protocol" / "cpu_default.yaml").read_text())
    protocol = Protocol.from_config(default | {"lr": 0.01, "optimizer": "sgd"})
    optimizer = make_optimizer(model, protocol)
    base, fusion_group = optimizer.param_groups
    fusion = {id(p) for n, p in model.named_parameters() if n.startswith("fusions.")}
    assert base["lr"] == 0.01 and fusion_group["lr"] == pytest.approx(1.0)
    assert {id(p) for p in fusion_group["params"]} == fusion
    assert len(base["params"]) + len(fusion) == len(list(model.parameters()))
    plain = make_optimizer(network("nddr_cnn"), protocol)
    assert [g["lr"] for g in plain.param_groups] == [0.01]


def test_per_channel_cross_stitch_mixes_each_channel_with_its_own_weights():
    model = network("cross_stitch", {"weights": "channel"})
    unit = model.fusions[0]["seg"]
    assert unit.alpha.shape == (2, 4)  # (source task, channel) at width 4
    with torch.no_grad():
        unit.alpha.copy_(torch.tensor([[1.0, 0.0, 2.0, 0.5], [0.0, 1.0, 1.0, 0.5]]))
    a, b = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    expected = torch.stack([a[:, 0], b[:, 1], 2 * a[:, 2] + b[:, 2], 0.5 * (a[:, 3] + b[:, 3])], 1)
    assert torch.allclose(unit(torch.stack([a, b])), expected)


def test_nddr_batchnorm_momentum_follows_the_option():
    assert network("nddr_cnn").fusions[0]["seg"].norm.momentum == 0.05
    assert network("nddr_cnn", {"bn_momentum": 0.1}).fusions[0]["seg"].norm.momentum == 0.1
    with pytest.raises(ValueError, match="bn_momentum"):
        build_method("nddr_cnn", {"bn_momentum": 0.0})


def test_single_task_start_trains_the_single_task_cell_first_and_adds_its_budget(tmp_path):
    with initialize_config_module("benchmarks.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "experiment=smoke",
                "method=cross_stitch",
                "method.init=single_task",
                "seed=0",
                f"dataset.cache_dir={tmp_path}/cache",
            ],
        )
    cells = expand_sweep(cfg)
    assert source_cell(cells[0]).method_name == "single_task"
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "mtl-sparse-bench")
    run_sweep(CellResources(tracker, torch.device("cpu")), cells)
    runs = {
        r.data.tags["method"]: r
        for r in MlflowClient(tracker.uri).search_runs([tracker.experiment_id])
    }
    assert set(runs) == {"single_task", "cross_stitch"}
    stitched = runs["cross_stitch"]
    assert stitched.data.tags["pretrained_run_id"] == runs["single_task"].info.run_id
    steps = 6  # experiment=smoke
    assert stitched.data.metrics["budget/train_steps"] == 2 * steps
    assert stitched.data.tags["variant"] == "init=single_task"  # its own leaderboard row:
    methods = set(collect_runs(tracker.uri, "mtl-sparse-bench")["method"])
    assert methods == {"single_task", "cross_stitch [init=single_task]"}


def test_a_cells_variant_names_only_options_that_differ_from_the_defaults():
    with initialize_config_module("benchmarks.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["method=nddr_cnn", "method.fusion_lr_multiplier=100", "seed=0"],
        )
        (default,) = expand_sweep(compose("config", overrides=["method=nddr_cnn", "seed=0"]))
    (changed,) = expand_sweep(cfg)
    assert default.variant == ""
    assert changed.variant == "fusion_lr_multiplier=100"
