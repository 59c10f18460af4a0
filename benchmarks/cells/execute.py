"""Run one cell: config -> dataset -> network -> method -> train -> evaluate -> log to MLflow."""

from __future__ import annotations

import json
import logging
import math
import random
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import yaml

from benchmarks.cells.cell import Cell
from benchmarks.cells.resume import (
    ARTIFACT_DIR,
    FILENAME,
    RESUME_TAG,
    ResumePoint,
    find_resume_point,
    rng_state,
    set_rng_state,
)
from benchmarks.reporting.task_masks import log_task_mask_analysis
from benchmarks.sweep.expand import load_method_config
from benchmarks.tracking.store import CellTakenError, RunLog, Tracker, code_version, flatten
from benchmarks.training.cost import TrainingBudget
from benchmarks.training.evaluation import evaluate, split_loss
from benchmarks.training.loop import (
    AfterBackward,
    BatchStream,
    LoopCheckpoints,
    Protocol,
    check_metrics,
    train,
)
from benchmarks.training.selection import BestCheckpoint
from datasets.registry import DatasetBundle, build_dataset
from methods.context import PruneContext
from methods.health import health_report
from methods.lifecycle import Method, backward_hook
from methods.masks import SPARSITY_TOLERANCE, MaskSet, measure_sparsity
from methods.networks import get_backbone
from methods.networks.complexity import complexity
from methods.registry import build_method

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint/model.pt"
HEALTH_SIZE = 64  # pixels: the side of the input the structural health check uses


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
    _datasets: dict[str, DatasetBundle] = field(default_factory=dict)

    def dataset(self, cell: Cell) -> DatasetBundle:
        """The cell's dataset, built once per distinct dataset config."""
        key = json.dumps(cell.dataset_options | {"name": cell.dataset["name"]}, sort_keys=True)
        if key not in self._datasets:
            bundle = build_dataset(cell.dataset["name"], cell.dataset_options)
            for line in bundle.summary():
                log.info(line)
            self._datasets[key] = bundle
        return self._datasets[key]


def _scoring_batches(bundle: DatasetBundle, protocol: Protocol, seed: int, device: torch.device):
    """The same first n training batches on every call (seeded apart from the training order)."""
    cache: list[dict[str, torch.Tensor]] = []
    stream = BatchStream(
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
        "selection": str(cell.protocol.get("checkpoint_selection", "last")),
        "seed": str(cell.seed),
        "sanity": str(cell.method.get("sanity", "none")),
        "variant": cell.variant,
        "config_hash": cell.config_hash,
        "setting_hash": cell.setting_hash,
        "code_version": code_version(),
    }


def _source_run_id(env: RunEnv, cell: Cell, method_name: str) -> str:
    """The finished run of the unpruned ``method_name`` with the cell's setting and seed,
    training it first if needed."""
    source = cell.with_method(load_method_config(method_name), 0.0)
    while True:
        run = env.tracker.wait_for_other_sweep(source.config_hash)  # a finished run, or None
        if run is not None:
            return run.info.run_id
        log.info("  no %s model for this setting and seed yet: training it first", method_name)
        try:
            return run_cell(env, source)
        except CellTakenError:  # another sweep started it a moment ago: wait for that one
            continue


def _save_state(
    run: RunLog,
    model: torch.nn.Module,
    artifact_dir: str,
    filename: str,
    masks: MaskSet | None = None,
) -> None:
    state = {"model": cpu_state(model)}
    if masks is not None:
        state["masks"] = masks.state_dict()
    run.artifact_torch(state, filename, artifact_dir)


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


class CellRun:
    """The state of one cell while it runs: model, data stream, step counter, MLflow run."""

    def __init__(self, env: RunEnv, cell: Cell, run: RunLog, method: Method):
        self.env, self.cell, self.run, self.method = env, cell, run, method
        self.protocol = Protocol.from_config(cell.protocol)
        self.bundle = env.dataset(cell)
        self.loss_weights = cell.loss_weights
        self.generator = seed_everything(cell.seed)  # model init and the method's random choices
        data_order = torch.Generator().manual_seed(cell.seed + 104_729)  # same for all methods
        self.stream = BatchStream(
            self.bundle.splits["train"],
            self.protocol.batch_size,
            data_order,
            env.device,
            self.protocol.num_workers,
        )
        self.model = self.build_network().to(env.device)
        if self.protocol.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.upsample_in_training = self.protocol.loss_resolution == "input"
        self.steps_done = 0
        self.budget = TrainingBudget(self.model, self.bundle.image_shape, self.protocol.batch_size)
        self.pretrained_run_id: str | None = None
        self.phase = 0  # train_for calls so far: what a checkpoint's position counts in
        self.resume: ResumePoint | None = None  # a killed run's checkpoint to continue from

    def build_network(self) -> torch.nn.Module:
        backbone = get_backbone(self.cell.model["name"], self.cell.model_options)
        return self.method.build_network(backbone, self.bundle.tasks)

    def fresh_init(self) -> dict[str, torch.Tensor]:
        """Initial weights of another draw (seeded from the cell), leaving the RNGs untouched."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cell.seed + 1_000_003)
            return {k: v.to(self.env.device) for k, v in self.build_network().state_dict().items()}

    def context(self) -> PruneContext:
        return PruneContext(
            model=self.model,
            tasks=self.bundle.tasks,
            loss_weights=self.loss_weights,
            sparsity=self.cell.sparsity,
            batches=_scoring_batches(self.bundle, self.protocol, self.cell.seed, self.env.device),
            generator=self.generator,
            train=self.train_for,
            snapshot=self.dense_snapshot,
            steps=self.protocol.steps,
            finetune_steps=self.protocol.finetune_steps,
            finetune_lr=self.protocol.finetune_lr,
            snapshot_steps=self.protocol.snapshot_steps,
            fresh_init=self.fresh_init,
        )

    def evaluate(self, split: str) -> dict[str, float]:
        return evaluate(
            self.model,
            self.bundle.splits[split],
            self.bundle.tasks,
            self.env.device,
            self.protocol.eval_batch_size,
        )

    def train_for(
        self,
        masks: MaskSet,
        steps: int,
        lr: float | None = None,
        after_backward: AfterBackward | None = None,
        select: bool = False,
    ) -> None:
        """Train under ``masks``; metrics continue the cell's step count across rounds. With
        ``select`` and ``protocol.checkpoint_selection=best_test_loss`` the model ends with the
        weights of its lowest test loss. When resuming, phases the killed run had finished are
        skipped (the checkpoint holds their outcome) and the checkpoint's phase continues after
        its saved step."""
        phase, self.phase = self.phase, self.phase + 1
        resume = None
        if self.resume is not None:
            if phase < self.resume.phase:
                return
            resume, self.resume = self.resume, None
            self._restore(resume.state, masks)
        snapshot_steps = set(self.protocol.snapshot_steps) if self.method.keeps_snapshots else set()
        if 0 in snapshot_steps and self.steps_done == 0 and resume is None:
            _save_state(self.run, self.model, "snapshots", "step_0.pt")
        best = None
        if select and self.protocol.checkpoint_selection == "best_test_loss":
            best = BestCheckpoint(
                self.model,
                self.test_loss,
                self.protocol.selection_every,
                eligible=lambda: masks.sparsity() >= self.cell.sparsity - SPARSITY_TOLERANCE,
            )
            if resume is not None and resume.state["best"] is not None:
                best.load_state_dict(resume.state["best"])

        def on_step_end(step: int) -> None:
            self.budget.add_step(masks)
            if step in snapshot_steps:
                _save_state(self.run, self.model, "snapshots", f"step_{step}.pt")
            if best is not None:
                best.observe(step, final=step == steps)

        def save(step: int, optimizer, scheduler, first_loss: float | None) -> None:
            self._save_checkpoint(phase, step, masks, optimizer, scheduler, first_loss, best)

        def resume_loop(optimizer, scheduler) -> tuple[int, float | None]:
            assert resume is not None
            optimizer.load_state_dict(resume.state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(resume.state["scheduler"])
            return resume.step, resume.state["first_loss"]

        checkpoints = LoopCheckpoints(
            self.protocol.checkpoint_every, save, resume_loop if resume is not None else None
        )
        train(
            self.model,
            masks,
            self.stream,
            self.bundle.tasks,
            self.loss_weights,
            self.protocol,
            steps,
            lambda: self.evaluate("val"),
            self.run.metrics,
            description=self.cell.label,
            after_backward=after_backward,
            on_step_end=on_step_end,
            step_offset=self.steps_done,
            lr=lr,
            checkpoints=checkpoints,
        )
        self.steps_done += steps
        if best is not None:
            chosen = best.restore()
            self.run.metrics(
                {"selection/best_step": chosen, "selection/test_loss": best.best_loss},
                self.steps_done,
            )

    def _save_checkpoint(
        self,
        phase: int,
        step: int,
        masks: MaskSet,
        optimizer: torch.optim.Optimizer,
        scheduler,
        first_loss: float | None,
        best: BestCheckpoint | None,
    ) -> None:
        """Everything the rest of the cell depends on, after ``step`` of training phase
        ``phase`` (``benchmarks.cells.resume``)."""
        state = {
            "phase": phase,
            "step": step,
            "steps_done": self.steps_done,
            "model": cpu_state(self.model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "first_loss": first_loss,
            "masks": {n: m.cpu() for n, m in masks.masks.items()},
            "task_masks": masks.task_masks,
            "budget": {"steps": self.budget.steps, "flops": self.budget.flops},
            "rng": rng_state(self.generator),
            "stream": self.stream.state_dict(),
            "best": best.state_dict() if best is not None else None,
        }
        self.run.artifact_torch(state, FILENAME, ARTIFACT_DIR)
        self.run.tags({RESUME_TAG: f"phase {phase} step {step}"})

    def _restore(self, state: dict, masks: MaskSet) -> None:
        """Model, masks (in place: the method holds this object), step count, budget, random
        states and data position as they were when ``state`` was saved."""
        self.model.load_state_dict(state["model"])
        for name, mask in state["masks"].items():
            masks.set_mask(name, mask.to(self.env.device))
        masks.task_masks = state["task_masks"]
        self.steps_done = state["steps_done"]
        self.budget.steps, self.budget.flops = state["budget"]["steps"], state["budget"]["flops"]
        set_rng_state(state["rng"], self.generator)
        self.stream.load_state_dict(state["stream"])

    def test_loss(self) -> float:
        return split_loss(
            self.model,
            self.bundle.splits["test"],
            self.bundle.tasks,
            self.loss_weights,
            self.env.device,
            self.protocol.eval_batch_size,
        )

    def load_pretrained(self, run_id: str) -> None:
        """Start from the trained model of run ``run_id``."""
        self.pretrained_run_id = run_id
        self.method.load_start(self.model, self._download_state(CHECKPOINT)["model"])
        self.run.tags({"pretrained_run_id": run_id})

    def budget_metrics(self) -> dict[str, float]:
        """Steps and FLOPs of all training that produced this model: the source run's (for
        methods that start from a trained model) plus this cell's. NaN when the source run
        predates budget logging."""
        totals = {"budget/train_steps": self.budget.steps, "budget/train_flops": self.budget.flops}
        if self.pretrained_run_id is None:
            return totals
        source = self.env.tracker.client.get_run(self.pretrained_run_id).data.metrics
        return {key: value + source.get(key, math.nan) for key, value in totals.items()}

    def dense_snapshot(self, step: int) -> dict[str, torch.Tensor]:
        """State of the dense run at training step ``step`` (saved at protocol.snapshot_steps)."""
        if self.pretrained_run_id is None:
            raise RuntimeError("dense snapshots exist only for methods that start from dense")
        if step not in self.protocol.snapshot_steps:
            raise ValueError(
                f"the dense run kept snapshots at steps {list(self.protocol.snapshot_steps)}, not "
                f"{step}; add {step} to protocol.snapshot_steps (this retrains the dense model)"
            )
        return self._download_state(f"snapshots/step_{step}.pt")["model"]

    def _download_state(self, artifact: str) -> dict:
        assert self.pretrained_run_id is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = self.env.tracker.download(self.pretrained_run_id, artifact, tmp)
            return torch.load(path, map_location=self.env.device, weights_only=True)


def run_cell(env: RunEnv, cell: Cell) -> str:
    """Train and evaluate one cell in its own MLflow run; returns the run id."""
    started = time.perf_counter()
    method = build_method(cell.method_name, cell.method_options)
    tags = cell_tags(cell, method, env.dataset(cell))
    params = flatten({**cell.as_dict(), "device": str(env.device)})
    name = cell.label.replace(" ", "-")
    with env.tracker.run(name, tags, params) as run:
        # Find (or first train) the source model before this cell seeds anything, so its random
        # state does not depend on whether the source already existed.
        source = _source_run_id(env, cell, method.start_from) if method.start_from else None
        state = CellRun(env, cell, run, method)
        if source is not None:
            state.load_pretrained(source)
        state.resume = find_resume_point(env.tracker, cell.config_hash, env.device)
        resuming = state.resume is not None
        if state.resume is not None:
            _continue_killed_run(env, run, state.resume, method.keeps_snapshots)
        ctx = state.context()
        prune_started = time.perf_counter()
        masks = method.initial_masks(ctx).to(env.device)
        masks.apply(state.model)
        run.metrics({"time/prune_s": time.perf_counter() - prune_started}, state.steps_done)
        if not resuming:  # a resumed run's start-of-training figures are in the killed run
            run.metrics(
                {f"sparsity_at_start/{k}": v for k, v in measure_sparsity(state.model).items()},
                state.steps_done,
            )
            if method.prunes:
                _log_health(run, state, masks)
        steps = method.training_steps(ctx)
        train_started = time.perf_counter()
        lr = method.training_lr(ctx)
        state.train_for(masks, steps, lr, backward_hook(method, ctx, masks, steps), select=True)
        method.finish(ctx, masks)
        train_s = time.perf_counter() - train_started
        test = state.evaluate("test")
        check_metrics(test, "on the test split")
        achieved = measure_sparsity(state.model)
        end = state.steps_done
        run.metrics({f"test/{k}": v for k, v in test.items()}, end)
        run.metrics({f"sparsity/{k}": v for k, v in achieved.items()}, end)
        run.metrics({f"sparsity_layer/{k}": v for k, v in masks.sparsity_by_layer().items()}, end)
        if method.prunes:
            _log_health(run, state, masks)
        cost = complexity(state.model, state.bundle.image_shape)
        run.metrics({f"model/{k}": v for k, v in cost.items()}, end)
        run.metrics(state.budget_metrics(), end)
        run.metrics({"time/train_s": train_s, "time/cell_s": time.perf_counter() - started}, end)
        _log_artifacts(run, cell, state.model, masks)
        log.info(
            "  done: sparsity %.4f | %s",
            achieved["overall"],
            ", ".join(f"{k} {v:.3g}" for k, v in test.items()),
        )
        return run.run_id


def _continue_killed_run(env: RunEnv, run: RunLog, point: ResumePoint, snapshots: bool) -> None:
    """Name the killed run this one continues, and carry over its dense snapshots (saved at
    steps the resumed run will not pass again)."""
    where = f"phase {point.phase} step {point.step}"
    log.info("  resuming the checkpoint of killed run %s (%s)", point.run_id, where)
    run.tags({"resumed_from_run_id": point.run_id, "resumed_at": where})
    if not snapshots:
        return
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = env.tracker.download(point.run_id, "snapshots", tmp)
        except OSError:  # it was killed before saving any
            return
        for path in sorted(folder.glob("*.pt")):
            run.artifact(path, "snapshots")


def _log_health(run: RunLog, state: CellRun, masks: MaskSet) -> None:
    """Collapsed layers and cut-off tasks now (logged at the cell's current step). Connectivity
    does not depend on the resolution, so a small input keeps the check cheap."""
    channels, height, width = state.bundle.image_shape
    shape = (channels, min(height, HEALTH_SIZE), min(width, HEALTH_SIZE))
    metrics, tags = health_report(state.model, masks, shape)
    run.metrics(metrics, state.steps_done)
    run.tags(tags)
    broken = {k: v for k, v in tags.items() if v}
    if broken:
        log.warning("  health at step %d: %s", state.steps_done, broken)


def _log_artifacts(run: RunLog, cell: Cell, model: torch.nn.Module, masks: MaskSet) -> None:
    run.artifact_text(yaml.safe_dump(cell.as_dict(), sort_keys=False), "config.yaml")
    run.artifact_torch(masks.state_dict(), "masks.pt", "masks")
    _save_state(run, model, "checkpoint", "model.pt", masks)
    if masks.task_masks:
        log_task_mask_analysis(run, masks)
