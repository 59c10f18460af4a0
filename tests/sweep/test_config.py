"""Hydra composition of every config, and how the command line narrows the sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from benchmarks import CONF_DIR
from benchmarks.sweep.expand import expand_sweep
from benchmarks.sweep.loader_workers import loader_workers
from methods.registry import get_method, list_methods

GROUPS = ("dataset", "model", "method", "protocol", "tracking", "experiment")


def compose_with(*overrides: str):
    with initialize_config_module("benchmarks.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=False)


@pytest.mark.parametrize(
    "group,option",
    [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))],
)
def test_every_config_option_composes_and_resolves(group, option):
    cfg = compose_with(f"{group}={option}")
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container["dataset"]["name"]
    assert container["protocol"]["steps"] >= 1
    cells = expand_sweep(cfg)
    assert cells


def test_default_sweep_is_every_method_at_three_sparsities_and_five_seeds():
    cells = expand_sweep(compose_with())
    assert {c.seed for c in cells} == {0, 1, 2, 3, 4}
    cells = [c for c in cells if c.seed == 0]
    compressors = [m for m in list_methods() if get_method(m).prunes]
    unpruned = [m for m in list_methods() if m not in compressors]
    own_cells = [m for m in unpruned if get_method(m).same_cell_as is None]
    assert len(cells) == len(own_cells) + 3 * len(compressors)
    assert cells[0].method_name == "dense"  # first: later cells reuse the trained dense model
    assert {c.sparsity for c in cells if c.method_name == "snip"} == {0.5, 0.7, 0.9}
    assert {c.sparsity for c in cells if c.method_name == "dense"} == {0.0}


def test_naming_method_sparsity_and_seed_gives_one_cell():
    cells = expand_sweep(compose_with("method=snip", "sparsity=0.9", "seed=3"))
    assert [(c.method_name, c.sparsity, c.seed) for c in cells] == [("snip", 0.9, 3)]


def test_hard_sharing_is_the_dense_cell():
    (cell,) = expand_sweep(compose_with("method=hard_sharing", "seed=0"))
    (dense,) = expand_sweep(compose_with("method=dense", "seed=0"))
    assert cell.cell_id == dense.cell_id


def test_naming_only_the_sparsity_narrows_every_method_to_it():
    cells = expand_sweep(compose_with("sparsity=0.7"))
    pruned = [c for c in cells if get_method(c.method_name).prunes]
    assert {c.sparsity for c in pruned} == {0.7}
    assert {c.sparsity for c in cells if c not in pruned} == {0.0}


def test_cell_id_is_stable_and_sensitive():
    a = expand_sweep(compose_with("method=snip", "sparsity=0.9", "seed=0"))[0]
    b = expand_sweep(compose_with("method=snip", "sparsity=0.9", "seed=0"))[0]
    c = expand_sweep(compose_with("method=snip", "sparsity=0.9", "seed=0", "method.budget=erk"))[0]
    assert a.cell_id == b.cell_id != c.cell_id
    assert a.setting_id == c.setting_id


def test_out_of_range_sparsity_is_a_clear_error():
    with pytest.raises(ValueError, match="sparsity=1.5 is outside"):
        expand_sweep(compose_with("sparsity=1.5"))


def test_tracking_uri_honours_the_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert compose_with().tracking.uri == "sqlite:///elsewhere.db"


def test_every_group_file_is_documented():
    for path in Path(CONF_DIR).rglob("*.yaml"):
        assert path.read_text().lstrip().startswith("#"), (
            f"{path} must start with a comment saying what it is, e.g. "
            "`# methods/my_method.py: <its rule in one line>`"
        )


def test_method_options_apply_to_every_cell_of_that_method():
    cells = expand_sweep(
        compose_with("sparsity=0.9", "seed=0", "++method_options.snip.scoring_batches=7")
    )
    snip = [c for c in cells if c.method_name == "snip"]
    assert snip and all(c.method["scoring_batches"] == 7 for c in snip)
    grasp = [c for c in cells if c.method_name == "grasp"]
    assert grasp[0].method["scoring_batches"] == 16  # other methods keep their file's value


@pytest.mark.parametrize(
    ("dataset", "weights"),
    [
        ("synthetic", {"seg": 1.0, "normal": 20.0}),  # the paper's NYUv2 weights
        ("synthetic_seg_depth", {"seg": 1.0, "depth": 20.0}),  # Cityscapes: normal not inherited
        ("synthetic_all", {"seg": 1.0, "normal": 3.0, "depth": 2.0, "keypoint": 7.0, "edge": 7.0}),
    ],
)
def test_each_embedded_setting_weighs_its_tasks_as_the_paper_weighs_its_counterpart(
    dataset, weights
):
    (cell,) = expand_sweep(compose_with(f"dataset={dataset}", "method=dense", "seed=0"))
    assert cell.loss_weights == weights


def test_method_options_for_an_unknown_method_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown method 'snap'"):
        expand_sweep(compose_with("++method_options.snap.scoring_batches=7"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("protocol.optimizer=foo", "protocol.optimizer must be one of adam, sgd"),
        ("+model.foo=1", "model=small_cnn: unknown option.*foo"),
        ("protocol.steps=0", "protocol.steps must be >= 1"),
        ("protocol.snapshot_steps=[0,5000]", r"snapshot_steps \[5000\] lie outside"),
        ("sparsity=abc", "sparsity='abc' is not a number"),
        ("seed=1.5", "seed=1.5 is not a whole number"),
        ("workers=two", "workers='two': give a positive integer or auto"),
        ("sweep.kinds=[statics]", "unknown kind"),
        ("sweep.sanity_checks=[flip]", "unknown check 'flip'"),
        ("protocol.lr=-0.1", r"protocol.lr must be > 0, got -0.1"),
        ("protocol.finetune_lr=0", r"protocol.finetune_lr must be > 0 or null"),
        ("protocol.weight_decay=-1e-4", r"protocol.weight_decay must be >= 0"),
        ("protocol.momentum=1.5", r"protocol.momentum must be in \[0, 1\)"),
        ("seed=99999999999999999999", r"seed=99999999999999999999 is outside 0\.\.2147483647"),
        ("seed=-1", r"seed=-1 is outside"),
        ("method=imp method.fraction=1.5", r"method=imp: fraction must be in \(0, 1\)"),
        ("method=lth method.rewind_step=5", r"rewind_step=5 but .*snapshot_steps=\[0, 15\]"),
        ("+sparsty=0.5", r"unknown option\(s\) sparsty \(did you mean sparsity\?\)"),
        ("++sweep.seed=[3]", r"unknown option\(s\) sweep.seed \(did you mean sweep.seeds\?\)"),
        ("+tracking.url=x", r"tracking.url \(did you mean tracking.uri\?\)"),
        ("tracking.stale_after_s=0", r"tracking.stale_after_s=0: .*a number above 0"),
        ("tracking.stale_after_s=soon", r"tracking.stale_after_s='soon': .*a number above 0"),
        ("++dataset.loss_weights.normals=3", r"loss_weights: normals is not a task of this"),
        ("protocol.readout_steps=[0,500]", r"readout_steps \[500\] lie outside the fine-tuning"),
    ],
)
def test_every_cells_options_are_checked_before_anything_runs(tmp_path, override, message):
    from benchmarks.sweep.setup import prepare_sweep

    cfg = compose_with(*override.split(), f"tracking.uri=sqlite:///{tmp_path}/never.db")
    with pytest.raises(ValueError, match=message):
        prepare_sweep(cfg)
    assert not (tmp_path / "never.db").exists()  # failed before the store was opened


def test_a_results_dir_that_is_a_file_fails_before_anything_runs(tmp_path):
    """It used to train every cell, then end in a NotADirectoryError traceback."""
    from benchmarks.sweep.setup import prepare_sweep

    taken = tmp_path / "results"
    taken.write_text("not a folder")
    cfg = compose_with(f"results_dir={taken}", f"tracking.uri=sqlite:///{tmp_path}/never.db")
    with pytest.raises(ValueError, match=f"results_dir='{taken}' is a file, not a folder"):
        prepare_sweep(cfg)
    assert not (tmp_path / "never.db").exists()


def test_a_misspelt_override_names_the_close_valid_options():
    from benchmarks.sweep.overrides import unknown_key_message

    message = unknown_key_message(["method=snip", "method.scoring_batch=3"])
    assert "unknown option method.scoring_batch" in message
    assert "did you mean method.scoring_batches or method.scoring_batch_size?" in message
    assert "did you mean protocol.steps?" in unknown_key_message(["protocol.stpes=3"])
    assert "did you mean protocol?" in unknown_key_message(["protocl.steps=3"])
    assert unknown_key_message(["method=snip", "method.scoring_batches=3", "seed=0"]) is None
    top = unknown_key_message(["sparsty=0.5"])  # Hydra's advice was `+sparsty=0.5`
    assert top.startswith("unknown option sparsty (did you mean sparsity?)")
    every = unknown_key_message(["method.budgett=erk"])  # was "valid method.* options: name"
    assert "method=all runs every method with its own options" in every
    assert "method_options.<method>.budget=..." in every and "snip" in every
    assert unknown_key_message(["method_options.snip.budget=erk"]) is None
    assert unknown_key_message(["-m", "method=snip,grasp", "sparsity=0.5,0.9"]) is None


@pytest.mark.parametrize("preset", ["paper_nyuv2", "paper_cityscapes", "paper_taskonomy"])
def test_another_model_on_a_paper_preset_replaces_the_presets_model_whole(preset):
    """Issue 25: the preset's deeplab options (head, init) made `model=small_cnn` an error."""
    authors = expand_sweep(compose_with(f"experiment={preset}", "method=dense"))[0].model
    assert authors == {
        "name": "deeplab_resnet34",
        "pretrained_path": None,
        "head": "aspp_fc",
        "init": "authors",
    }
    cell = expand_sweep(compose_with(f"experiment={preset}", "model=small_cnn", "method=dense"))[0]
    assert cell.model == {"name": "small_cnn", "width": 16}
    assert cell.model_options.width == 16
    tuned = expand_sweep(compose_with(f"experiment={preset}", "model.head=aspp", "method=dense"))
    assert tuned[0].model["head"] == "aspp" and tuned[0].model["init"] == "authors"


def test_the_slurm_gpu_launcher_asks_each_job_for_a_gpu_cpus_and_memory():
    """Issue 25: hydra/launcher=slurm asked for no GPU and one CPU: a job trained on one core."""
    with initialize_config_module("benchmarks.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["experiment=paper_nyuv2", "hydra/launcher=slurm_gpu"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher.gpus_per_node == 1 and launcher.mem_gb >= 32
    assert cfg.protocol.num_workers == "auto"  # the job's CPUs, one kept for training
    assert loader_workers("cuda", 1, launcher.cpus_per_task) == launcher.cpus_per_task - 1
    assert launcher.additional_parameters.requeue and launcher.max_num_timeout == 3  # slurm's
    assert "submitit" in launcher._target_ and cfg.device == "cuda"


@pytest.mark.parametrize("preset", ["paper_nyuv2", "paper_cityscapes", "paper_taskonomy"])
def test_a_paper_preset_on_a_machine_without_cuda_fails_at_start_up(preset, monkeypatch, caplog):
    from benchmarks.sweep.main import sweep

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stopped:
        sweep(compose_with(f"experiment={preset}", "dataset.root=/nonexistent"))
    assert stopped.value.code == 2
    assert "device=cuda but PyTorch sees no CUDA device" in caplog.text


def test_the_gpu_variant_of_a_preset_is_the_preset_in_bf16_channels_last_as_its_own_setting():
    plain = expand_sweep(compose_with("experiment=paper_nyuv2", "method=dense"))[0]
    fast = expand_sweep(compose_with("experiment=paper_nyuv2_gpu", "method=dense"))[0]
    assert fast.protocol == {**plain.protocol, "amp": "bf16", "channels_last": True}
    assert fast.model == plain.model and fast.dataset == plain.dataset
    assert fast.setting_id != plain.setting_id  # its numbers are never averaged with fp32 ones
    assert plain.protocol["cudnn_benchmark"] is True
