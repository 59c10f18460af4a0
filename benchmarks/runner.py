"""Run one cell: config -> dataset -> network -> method -> train -> evaluate -> log to MLflow."""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from benchmarks.cell import Cell
from benchmarks.evaluation import evaluate
from benchmarks.tracking import RunLog, Tracker, code_version, flatten
from benchmarks.training import Protocol, endless_batches, train
from datasets.registry import DatasetBundle, build_dataset
from methods.context import PruneContext
from methods.masks import MaskSet, measure_sparsity
from methods.networks import build_model
from methods.registry import Method, MethodKind, build_method

log = logging.getLogger(__name__)
DATASET_META_KEYS = ("name", "loss_weights")  # dataset config keys that are not loader options
CHECKPOINT = "checkpoint/model.pt"


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class RunEnv:
    """What all cells of a sweep share: the tracker, the device and loaded datasets."""

    tracker: Tracker
    device: torch.device
    dense_method: dict  # config of ``dense``, for finding a cell's pretrained source
    _datasets: dict[str, DatasetBundle] = field(default_factory=dict)

    def dataset(self, config: dict) -> DatasetBundle:
        key = json.dumps(config, sort_keys=True)
        if key not in self._datasets:
            options = {k: v for k, v in config.items() if k not in DATASET_META_KEYS}
            bundle = build_dataset(config["name"], options)
            for line in bundle.summary():
                log.info(line)
            self._datasets[key] = bundle
        return self._datasets[key]

    def pretrained_source(self, cell: Cell) -> Cell:
        return cell.with_method(self.dense_method, 0.0)


def _scoring_batches(bundle: DatasetBundle, protocol: Protocol, seed: int, device: torch.device):
    """The same first n training batches on every call (seeded apart from the training order)."""
    cache: list[dict[str, torch.Tensor]] = []
    stream = endless_batches(
        bundle.splits["train"],
        protocol.batch_size,
        torch.Generator().manual_seed(seed + 7919),
        device,
    )

    def batches(n: int):
        while len(cache) < n:
            cache.append(next(stream))
        return iter(cache[:n])

    return batches


def cell_tags(cell: Cell, method: Method, bundle: DatasetBundle) -> dict[str, str]:
    return {
        "method": cell.method_name,
        "method_kind": method.kind.value,
        "group": method.group,
        "dataset": cell.dataset["name"],
        "tasks": json.dumps({t.name: t.kind for t in bundle.tasks}),
        "model": cell.model["name"],
        "protocol": cell.protocol["name"],
        "sparsity": f"{cell.sparsity:g}",
        "seed": str(cell.seed),
        "config_hash": cell.config_hash,
        "setting_hash": cell.setting_hash,
        "code_version": code_version(),
    }


def load_pretrained(env: RunEnv, cell: Cell, model: torch.nn.Module) -> str:
    """Load the trained dense model of the same setting and seed, training it first if needed."""
    source = env.pretrained_source(cell)
    run = env.tracker.find_finished(source.config_hash)
    if run is None:
        log.info("  no finished dense model for this setting and seed yet: training it first")
        run_cell(env, source)
        run = env.tracker.find_finished(source.config_hash)
        if run is None:
            raise RuntimeError("the dense model was trained but its run cannot be found")
    with tempfile.TemporaryDirectory() as tmp:
        path = env.tracker.download(run.info.run_id, CHECKPOINT, tmp)
        state = torch.load(path, map_location=env.device, weights_only=True)
    model.load_state_dict(state["model"])
    return run.info.run_id


def run_cell(env: RunEnv, cell: Cell) -> str:
    """Train and evaluate one cell in its own MLflow run; returns the run id."""
    started = time.perf_counter()
    method = build_method(cell.method_name, {k: v for k, v in cell.method.items() if k != "name"})
    protocol = Protocol.from_config(cell.protocol)
    bundle = env.dataset(cell.dataset)
    loss_weights = dict(cell.dataset.get("loss_weights") or {})
    generator = seed_everything(cell.seed)  # model init and the method's random choices
    data_order = torch.Generator().manual_seed(cell.seed + 104_729)  # same for every method
    tags = cell_tags(cell, method, bundle)
    params = flatten({**cell.as_dict(), "device": str(env.device)})
    name = f"{cell.method_name}-s{cell.sparsity:g}-seed{cell.seed}"
    with env.tracker.run(name, tags, params) as run:
        model = build_model(
            cell.model["name"], {k: v for k, v in cell.model.items() if k != "name"}, bundle.tasks
        ).to(env.device)
        steps = protocol.steps
        if method.kind == MethodKind.PRUNE_PRETRAINED:
            run.tags({"pretrained_run_id": load_pretrained(env, cell, model)})
            steps = protocol.finetune_steps
        ctx = PruneContext(
            model=model,
            tasks=bundle.tasks,
            loss_weights=loss_weights,
            sparsity=cell.sparsity,
            batches=_scoring_batches(bundle, protocol, cell.seed, env.device),
            generator=generator,
        )
        prune_started = time.perf_counter()
        masks = method.make_masks(ctx) if method.prunes else MaskSet.dense(model)
        masks = masks.to(env.device)
        masks.apply(model)
        run.metrics({"time/prune_s": time.perf_counter() - prune_started}, 0)
        run.metrics({f"sparsity_at_start/{k}": v for k, v in measure_sparsity(model).items()}, 0)

        def validate() -> dict[str, float]:
            return evaluate(
                model, bundle.splits["val"], bundle.tasks, env.device, protocol.eval_batch_size
            )

        train_started = time.perf_counter()
        train(
            model,
            masks,
            endless_batches(bundle.splits["train"], protocol.batch_size, data_order, env.device),
            bundle.tasks,
            loss_weights,
            protocol,
            steps,
            validate,
            run.metrics,
            description=cell.label,
        )
        train_s = time.perf_counter() - train_started
        test = evaluate(
            model, bundle.splits["test"], bundle.tasks, env.device, protocol.eval_batch_size
        )
        achieved = measure_sparsity(model)
        run.metrics({f"test/{k}": v for k, v in test.items()}, steps)
        run.metrics({f"sparsity/{k}": v for k, v in achieved.items()}, steps)
        run.metrics({f"sparsity_layer/{k}": v for k, v in masks.sparsity_by_layer().items()}, steps)
        run.metrics({"time/train_s": train_s, "time/cell_s": time.perf_counter() - started}, steps)
        _log_artifacts(run, cell, model, masks)
        log.info(
            "  done: sparsity %.4f | %s",
            achieved["overall"],
            ", ".join(f"{k} {v:.3g}" for k, v in test.items()),
        )
        return run.run_id


def _log_artifacts(run: RunLog, cell: Cell, model: torch.nn.Module, masks: MaskSet) -> None:
    run.artifact_text(yaml.safe_dump(cell.as_dict(), sort_keys=False), "config.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        mask_path = Path(tmp) / "masks.pt"
        torch.save(masks.state_dict(), mask_path)
        run.artifact(mask_path, "masks")
        checkpoint = Path(tmp) / "model.pt"
        state = {k: v.cpu() for k, v in model.state_dict().items()}
        torch.save({"model": state, "masks": masks.state_dict()}, checkpoint)
        run.artifact(checkpoint, "checkpoint")
