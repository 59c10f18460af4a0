"""Run one cell: config -> dataset -> network -> method -> train -> evaluate -> log to MLflow.

The parts live beside this module: the source model of a pretrained cell (``source``), its
training phases (``phases``) and resumable checkpoints (``resume``); this module puts them in
order and records what the run produced.
"""

from __future__ import annotations

import logging
import math
import random
import tempfile
import time

import numpy as np
import torch

from benchmarks.cells import records
from benchmarks.cells.builders import cell_method, cell_model_parts
from benchmarks.cells.cell import Cell
from benchmarks.cells.phases import PhasesPlan, TrainingPhases
from benchmarks.cells.resources import CellResources
from benchmarks.cells.resume import ResumePoint, find_resume_point
from benchmarks.cells.scratch import cut_to_shapes, scratch_steps
from benchmarks.cells.source import SourceModel, source_cell
from benchmarks.tracking.claims import CellTakenError
from benchmarks.tracking.run_log import TrackedRun, delete_artifacts
from benchmarks.tracking.schema import (
    PRETRAINED_RUN_ID,
    RESUME_CHECKPOINT,
    RESUMED_AT,
    RESUMED_FROM,
    SCRATCH_STEPS,
    SNAPSHOTS,
    SPARSITY_AT_START,
    TIME,
    TRAIN_FLOPS,
)
from benchmarks.training.loop import Objective
from benchmarks.training.protocol import Protocol
from benchmarks.training.stream import BatchStream
from datasets.registry import DatasetBundle
from methods.context import PruneContext
from methods.lifecycle import Method, backward_hook
from methods.masks import MaskSet, measure_sparsity
from methods.sanity import SCRATCH_CONTROLS

log = logging.getLogger(__name__)
SCORING_ORDER_SEED = 7919  # added to the cell's seed: scoring batches apart from training order
FRESH_INIT_SEED = 1_000_003  # added to the cell's seed: another draw of the initial weights


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def scoring_batches(bundle: DatasetBundle, protocol: Protocol, seed: int, device: torch.device):
    """The same first n training batches on every call (seeded apart from the training order).
    They are kept in host memory and moved to ``device`` one at a time as they are read: 50
    scoring batches of the paper presets (2.8 GB) would otherwise stay on the GPU all cell."""
    cache: list[dict[str, torch.Tensor]] = []
    stream = BatchStream(
        bundle.splits["train"],
        protocol.batch_size,
        torch.Generator().manual_seed(seed + SCORING_ORDER_SEED),
        torch.device("cpu"),
    )

    def batches(n: int):
        while len(cache) < n:
            cache.append(next(stream))
        return ({k: v.to(device) for k, v in batch.items()} for batch in cache[:n])

    return batches


def build_network(cell: Cell, method: Method, bundle: DatasetBundle) -> torch.nn.Module:
    return method.build_network(cell_model_parts(cell), bundle.tasks)


def train_source_first(resources: CellResources, cell: Cell) -> str:
    """The finished run of the cell's source cell (same setting and seed), training it first
    if no sweep has it."""
    source = source_cell(cell)
    assert source is not None
    while True:
        run = resources.tracker.wait_for_other_sweep(source.key)  # a finished run, or None
        if run is not None:
            return run.info.run_id
        log.info("  no %s model for this setting and seed yet: training it first", cell.start_from)
        try:
            return run_cell(resources, source)
        except CellTakenError:  # another sweep started it a moment ago: wait for that one
            continue


class CellSetup:
    """A cell's network, method, protocol and training phases, seeded, on the device."""

    def __init__(
        self,
        resources: CellResources,
        cell: Cell,
        run: TrackedRun,
        method: Method,
        resume: ResumePoint | None,
    ):
        self.resources, self.cell, self.method = resources, cell, method
        self.protocol = cell.protocol_options
        self.bundle = resources.dataset(cell)
        self.generator = seed_everything(cell.seed)  # model init and the method's random choices
        torch.backends.cudnn.benchmark = self.protocol.cudnn_benchmark  # CUDA only
        model = build_network(cell, method, self.bundle).to(resources.device)
        if self.protocol.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model.upsample_in_training = self.protocol.loss_resolution == "input"
        plan = PhasesPlan(
            label=cell.label,
            target_sparsity=cell.sparsity,
            snapshot_steps=frozenset(self.protocol.snapshot_steps)
            if method.keeps_snapshots
            else frozenset(),
            resume=resume,
        )
        self.phases = TrainingPhases(
            model,
            self.bundle,
            self.protocol,
            Objective(self.bundle.tasks, cell.loss_weights),
            run,
            self.generator,
            cell.seed,
            resources.device,
            plan,
        )
        self.source: SourceModel | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.phases.model

    def start_from(self, run_id: str) -> None:
        """Start from the trained model of the source cell's run ``run_id``."""
        self.source = SourceModel(self.resources.tracker, run_id, self.resources.device)
        self.method.load_start(self.model, self.source.trained_state())
        self.phases.run.tags({PRETRAINED_RUN_ID: run_id})

    def fresh_init(self) -> dict[str, torch.Tensor]:
        """Initial weights of another draw (seeded from the cell), leaving the RNGs untouched."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cell.seed + FRESH_INIT_SEED)
            network = build_network(self.cell, self.method, self.bundle)
            return {k: v.to(self.resources.device) for k, v in network.state_dict().items()}

    def dense_network(self) -> torch.nn.Module:
        """A fresh network of the setting's dense model (hard sharing), on the device: what
        the inference figures compare against. Leaves the RNGs untouched."""
        with torch.random.fork_rng(devices=[]):
            network = cell_model_parts(self.cell).hard_sharing(self.bundle.tasks)
            network = network.to(self.resources.device)
        if self.protocol.channels_last:
            network = network.to(memory_format=torch.channels_last)
        return network

    def dense_snapshot(self, step: int) -> dict[str, torch.Tensor]:
        if self.source is None:
            raise RuntimeError("dense snapshots exist only for methods that start from dense")
        return self.source.snapshot(step, self.protocol.snapshot_steps)

    def context(self) -> PruneContext:
        return PruneContext(
            model=self.model,
            tasks=self.bundle.tasks,
            loss_weights=self.cell.loss_weights,
            sparsity=self.cell.sparsity,
            batches=scoring_batches(
                self.bundle, self.protocol, self.cell.seed, self.resources.device
            ),
            generator=self.generator,
            train=self.phases.train_for,
            snapshot=self.dense_snapshot,
            steps=self.protocol.steps,
            finetune_steps=self.protocol.finetune_steps,
            finetune_lr=self.protocol.finetune_lr,
            snapshot_steps=self.protocol.snapshot_steps,
            fresh_init=self.fresh_init,
        )


def run_cell(resources: CellResources, cell: Cell) -> str:
    """Train and evaluate one cell in its own MLflow run; returns the run id."""
    started = time.perf_counter()
    method = cell_method(cell)
    bundle = resources.dataset(cell)
    tags = records.cell_tags(cell, method, bundle, resources.device)
    with resources.tracker.run(
        cell.label.replace(" ", "-"), tags, records.cell_params(cell, resources.device), cell.key
    ) as run:
        run.dataset_input(cell.dataset["name"], cell.dataset_digest, cell.dataset.get("root"))
        # Find (or first train) the source model before this cell seeds anything, so its random
        # state does not depend on whether the source already existed.
        source_run = train_source_first(resources, cell) if cell.start_from else None
        resume = find_resume_point(resources.tracker, cell.key, resources.device)
        setup = CellSetup(resources, cell, run, method, resume)
        if source_run is not None:
            setup.start_from(source_run)
        phases = setup.phases
        resuming = resume is not None
        if resume is not None:
            _continue_killed_run(resources, run, resume, method.keeps_snapshots)
        ctx = setup.context()
        prune_started = time.perf_counter()
        masks = method.initial_masks(ctx).to(resources.device)
        masks.apply(setup.model)
        run.metrics({f"{TIME}prune_s": time.perf_counter() - prune_started}, phases.steps_done)
        if not resuming:  # a resumed run's start-of-training figures are in the killed run
            at_start = measure_sparsity(setup.model)
            run.metrics({SPARSITY_AT_START + k: v for k, v in at_start.items()}, phases.steps_done)
            if method.prunes:
                records.log_health(run, setup.model, masks, bundle, phases.steps_done)
        steps = method.training_steps(ctx)
        train_started = time.perf_counter()
        lr = method.training_lr(ctx)
        readouts = setup.protocol.readout_steps if method.reads_out_after_pruning else ()
        hook = backward_hook(method, ctx, masks, steps)
        phases.train_for(masks, steps, lr, hook, select=True, readouts=readouts)
        method.finish(ctx, masks)
        control = cell.method.get("sanity", "none")
        if control in SCRATCH_CONTROLS:
            _retrain_from_scratch(setup, masks, control, resume)
        train_s = time.perf_counter() - train_started
        source_cost = setup.source.training_cost() if setup.source is not None else None
        records.log_results(run, phases, masks, method, source_cost)
        run.metrics(
            {f"{TIME}train_s": train_s, f"{TIME}cell_s": time.perf_counter() - started},
            phases.steps_done,
        )
        records.log_inference(run, setup.model, setup.dense_network(), bundle, phases.steps_done)
        records.log_artifacts(run, cell, setup.model, masks, bundle)
        _drop_resume_checkpoints(resources, run, cell)
        return run.run_id


def _retrain_from_scratch(
    setup: CellSetup, masks: MaskSet, control: str, resume: ResumePoint | None
) -> None:
    """The scratch control ``control`` (``benchmarks.cells.scratch``): the pruned network
    re-initialised and trained again. A run resumed inside this phase takes its step count from
    the killed run (the pipeline's cost it was computed from is not known again until then)."""
    phases = setup.phases
    steps = None
    if resume is not None:
        steps = setup.resources.tracker.run_metrics(resume.run_id).get(SCRATCH_STEPS)
    if steps is None:
        source = setup.source.training_cost() if setup.source is not None else {}
        pipeline = source.get(TRAIN_FLOPS, math.nan) + phases.training_cost["flops"]
        step_flops = phases.cost.step_flops(masks)
        steps = scratch_steps(control, setup.protocol.steps, pipeline, step_flops)
    steps = int(steps)
    log.info("  %s: the pruned network re-initialised, trained %d steps", control, steps)
    trained = setup.model.state_dict()
    setup.model.load_state_dict(cut_to_shapes(setup.fresh_init(), trained))
    masks.apply(setup.model)
    phases.run.metrics({SCRATCH_STEPS: steps}, phases.steps_done)
    phases.train_for(masks, steps, select=True)


def _drop_resume_checkpoints(resources: CellResources, run: TrackedRun, cell: Cell) -> None:
    """The cell finished: nothing resumes from its checkpoints again (this run's, its killed
    runs'), each as large as the model and its optimiser state."""
    run.delete_artifacts(RESUME_CHECKPOINT[0])
    for killed in resources.tracker.runs_of(cell.key, "KILLED"):
        delete_artifacts(resources.tracker.client, killed.info.run_id, RESUME_CHECKPOINT[0])


def _continue_killed_run(
    resources: CellResources, run: TrackedRun, point: ResumePoint, snapshots: bool
) -> None:
    """Name the killed run this one continues, and carry over its dense snapshots (saved at
    steps the resumed run will not pass again)."""
    where = f"phase {point.phase} step {point.step}"
    log.info("  resuming the checkpoint of killed run %s (%s)", point.run_id, where)
    run.tags({RESUMED_FROM: point.run_id, RESUMED_AT: where})
    if not snapshots:
        return
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = resources.tracker.download(point.run_id, SNAPSHOTS, tmp)
        except OSError:  # it was killed before saving any
            return
        for path in sorted(folder.glob("*.pt")):
            run.artifact(path, SNAPSHOTS)
