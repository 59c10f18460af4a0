"""What several test modules share: the tiny protocol and pruning context, a method's whole
lifecycle on the tiny model, and the benchmark run as a user runs it (fixtures are in conftest)."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.tracking import MlflowClient

from benchmarks.cells.cell import options
from benchmarks.cells.method_configs import load_method_config
from benchmarks.sweep.expand import expand_sweep
from benchmarks.tracking.access import open_client
from benchmarks.training.loop import LoopHooks, Objective, Phase, train
from benchmarks.training.protocol import Protocol
from methods.context import PruneContext
from methods.lifecycle import Method, backward_hook
from methods.networks import model_parts
from methods.registry import build_method, get_method

ROOT = Path(__file__).resolve().parents[1]


SHARED_DATA = ROOT.parent / "shared" / "data"


TINY_PROTOCOL = Protocol(
    name="tiny",
    batch_size=4,
    steps=3,
    finetune_steps=2,
    optimizer="adam",
    lr=0.01,
    momentum=0.9,
    weight_decay=0.0,
    lr_schedule="constant",
    lr_step_every=1,
    lr_step_gamma=1.0,
    finetune_lr=None,
    readout_steps=(),
    eval_every=1000,
    eval_batch_size=4,
    log_every=1000,
    snapshot_steps=(0,),
    loss_resolution="input",
    checkpoint_selection="last",
    selection_every=50,
    checkpoint_every=None,
    num_workers=0,
    amp="none",
    channels_last=False,
    cudnn_benchmark=False,
)


def make_context(
    model, bundle, sparsity: float, seed: int = 0, batch_size: int = 4, device: str = "cpu"
):
    """A PruneContext over the first training batches of ``bundle`` (fixed order) that can
    really train (a few Adam steps) and rewind to the model's state at creation (step 0)."""
    split = bundle.splits["train"]
    images = torch.stack([split[i]["image"] for i in range(len(split))])
    labels = {
        t.name: torch.stack([split[i][t.name] for i in range(len(split))]) for t in bundle.tasks
    }
    batches = [
        {
            "image": images[i : i + batch_size],
            **{k: v[i : i + batch_size] for k, v in labels.items()},
        }
        for i in range(0, len(images), batch_size)
    ]
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    def batch_source(n):
        return iter([batches[i % len(batches)] for i in range(n)])

    def train_for(masks, steps, lr=None):
        stream = itertools.cycle(batches)
        train(model, masks, stream, Objective(bundle.tasks), TINY_PROTOCOL, Phase(steps, lr))

    def snapshot(step):
        assert step == 0, "the test context keeps only the initial state"
        return initial

    return PruneContext(
        model=model,
        tasks=bundle.tasks,
        loss_weights={},
        sparsity=sparsity,
        batches=batch_source,
        generator=torch.Generator().manual_seed(seed),
        train=train_for,
        snapshot=snapshot,
        steps=TINY_PROTOCOL.steps,
        finetune_steps=2,
        snapshot_steps=(0,),
    )


LIFECYCLE_STEPS = 6


def method_for(name: str) -> Method:
    """The method as its config file builds it; dynamic methods update at every step here."""
    config = options(load_method_config(name))
    if "delta_t" in {f.name for f in dataclasses.fields(get_method(name).Options)}:
        config["delta_t"] = 1
    return build_method(name, config)


TINY_MODEL = ("small_cnn", {"width": 4})


def run_lifecycle(
    name, tiny_tasks, bundle, sparsity, seed=0, logged=None, device="cpu", model=TINY_MODEL
):
    """A method's whole life as the runner drives it, on the tiny model (or ``model``: name and
    options): ``initial_masks``, ``LIFECYCLE_STEPS`` training steps with ``on_backward`` after
    each backward pass, ``finish``."""
    method = method_for(name)
    torch.manual_seed(seed)
    parts = model_parts(*model)
    model = method.build_network(parts, tiny_tasks).to(device)
    ctx = make_context(model, bundle, sparsity, seed, device=device)
    masks = method.initial_masks(ctx)
    masks.apply(model)
    hooks = LoopHooks(
        validate=lambda: {"x": 0.0},
        sink=lambda metrics, step: logged.append(step) if logged is not None else None,
        after_backward=backward_hook(method, ctx, masks, LIFECYCLE_STEPS),
    )
    train(
        model,
        masks,
        ctx.batches(LIFECYCLE_STEPS),
        Objective(bundle.tasks),
        dataclasses.replace(TINY_PROTOCOL, eval_every=LIFECYCLE_STEPS, log_every=1),
        Phase(LIFECYCLE_STEPS),
        hooks,
    )
    method.finish(ctx, masks)
    return masks, model, method


def smoke_command(
    tmp: Path, *overrides: str, uri: str | None = None, multirun: bool = False
) -> list[str]:
    """``python -m benchmarks.run`` of the smoke experiment with its store (``uri``, default a
    SQLite file), results, Hydra folders and data cache in ``tmp``."""
    return [
        sys.executable,
        "-m",
        "benchmarks.run",
        *(["-m"] if multirun else []),
        "experiment=smoke",
        f"tracking.uri={uri or sqlite_uri(tmp)}",
        f"results_dir={tmp}/results",
        f"hydra.run.dir={tmp}/out",
        f"hydra.sweep.dir={tmp}/multi",
        f"dataset.cache_dir={tmp}/cache",
        *overrides,
    ]


def sqlite_uri(tmp: Path) -> str:
    return f"sqlite:///{tmp}/mlflow.db"


def run_benchmark(tmp: Path, *overrides: str, multirun: bool = False):
    command = smoke_command(tmp, *overrides, multirun=multirun)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def sweep_command(
    tmp: Path, *overrides: str, method: str = "random", workers: int = 1
) -> list[str]:
    return smoke_command(tmp, "sparsity=0.5", f"workers={workers}", f"method={method}", *overrides)


def store_runs(uri: str) -> list[Run]:
    """Every run of the benchmark's experiment in the store at ``uri`` ([] before it exists).
    Safe to poll while a sweep creates the store: it opens under the sweep's creation lock."""
    client = open_client(uri)
    experiment = client.get_experiment_by_name("mtl-sparse-bench")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], max_results=1000)


def finished_runs(tmp: Path):
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    experiment = client.get_experiment_by_name("mtl-sparse-bench")
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def copy_run(
    client: MlflowClient,
    experiment_id: str,
    source: Run,
    tags: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    start_time: int | None = None,
) -> str:
    """A finished copy of ``source`` in ``client``'s store, with ``tags`` and ``metrics``
    changed (a run another code version, setting or result would have logged); its run id."""
    run = client.create_run(experiment_id, start_time=start_time or source.info.start_time)
    all_tags = {**source.data.tags, **(tags or {})}
    client.log_batch(
        run.info.run_id,
        params=[Param(k, v) for k, v in source.data.params.items()],
        tags=[RunTag(k, v) for k, v in all_tags.items() if not k.startswith("mlflow.")],
        metrics=[Metric(k, v, 0, 0) for k, v in {**source.data.metrics, **(metrics or {})}.items()],
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def smoke_config(*overrides):
    """The composed config of ``experiment=smoke`` with ``overrides``."""
    with initialize_config_module("benchmarks.conf", version_base="1.3"):
        return compose("config", overrides=["experiment=smoke", *overrides])


def smoke_cells(*overrides):
    return expand_sweep(smoke_config(*overrides))


def protocol_file(path: Path) -> dict:
    """A protocol file's values, ``num_workers: auto`` resolved as the sweep resolves it in a
    job with one GPU and 8 cores (``benchmarks.sweep.loader_workers``)."""
    import yaml

    from benchmarks.sweep.loader_workers import AUTO, loader_workers

    config = yaml.safe_load(path.read_text())
    if config.get("num_workers") == AUTO:
        config["num_workers"] = loader_workers("cuda", 1, 8)
    return config
