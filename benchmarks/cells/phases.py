"""A cell's training: phases (a method trains once, or in rounds) that continue one step count,
with dense snapshots, best-checkpoint selection and resumable checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from benchmarks.cells.resume import ResumePoint, rng_state, set_rng_state
from benchmarks.tracking.run_log import TrackedRun
from benchmarks.tracking.schema import (
    READOUT,
    RESUME_CHECKPOINT,
    RESUME_POINT,
    SELECTED,
    SNAPSHOTS,
    snapshot_file,
)
from benchmarks.training.cost import TrainingCost
from benchmarks.training.evaluation import constant_predictor_metrics, evaluate, split_loss
from benchmarks.training.loop import LoopCheckpoints, LoopHooks, Objective, Phase, train
from benchmarks.training.protocol import Protocol
from benchmarks.training.selection import BestCheckpoint
from benchmarks.training.stream import BatchStream
from core.state import cpu_state_dict
from datasets.registry import DatasetBundle
from methods.lifecycle import AfterBackward
from methods.masks import SPARSITY_TOLERANCE, MaskSet

DATA_ORDER_SEED = 104_729  # added to the cell's seed: the same batch order for every method


@dataclass(frozen=True)
class PhasesPlan:
    """What a cell's training keeps and selects, besides its protocol."""

    label: str = "train"  # names the cell in progress lines
    target_sparsity: float = 0.0  # best-checkpoint selection considers only states this sparse
    snapshot_steps: frozenset[int] = frozenset()  # steps whose weights are kept (dense runs)
    resume: ResumePoint | None = None  # a killed run's checkpoint to continue from


class TrainingPhases:
    """The model, its data stream, step count and training cost while a cell trains, logging to
    ``run``. Its state (``state_dict``) is what a resumable checkpoint holds besides the training
    loop's own (optimiser, scheduler, best checkpoint)."""

    def __init__(
        self,
        model: torch.nn.Module,
        bundle: DatasetBundle,
        protocol: Protocol,
        objective: Objective,
        run: TrackedRun,
        generator: torch.Generator,
        seed: int,
        device: torch.device,
        plan: PhasesPlan = PhasesPlan(),
    ):
        self.model, self.bundle, self.protocol, self.objective = model, bundle, protocol, objective
        self.run, self.generator, self.device, self.plan = run, generator, device, plan
        self.stream = BatchStream(
            bundle.splits["train"],
            protocol.batch_size,
            torch.Generator().manual_seed(seed + DATA_ORDER_SEED),
            device,
            protocol.num_workers,
        )
        self.cost = TrainingCost(model, bundle.train_image_shape, protocol.batch_size)
        self.steps_done = 0
        self.phase = 0  # train_for calls so far: what a checkpoint's position counts in
        self._resume = plan.resume
        self.masks: MaskSet | None = None  # those of the phase under way

    @property
    def training_cost(self) -> dict[str, float]:
        """Optimiser steps and their FLOPs so far (``benchmarks.training.cost``)."""
        return self.cost.state_dict()

    def state_dict(self) -> dict[str, Any]:
        """Everything the rest of the cell depends on, now: model, masks, step count, training
        cost, random states and data position."""
        assert self.masks is not None, "no training phase has started"
        return {
            "steps_done": self.steps_done,
            "model": cpu_state_dict(self.model),
            "masks": {n: m.cpu() for n, m in self.masks.masks.items()},
            "task_masks": self.masks.task_masks,
            "cost": self.cost.state_dict(),
            "rng": rng_state(self.generator),
            "stream": self.stream.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Back to ``state``; the masks are set in place (the method holds that object)."""
        assert self.masks is not None, "no training phase has started"
        self.model.load_state_dict(state["model"])
        for name, mask in state["masks"].items():
            self.masks.set_mask(name, mask.to(self.device))
        self.masks.task_masks = state["task_masks"]
        self.steps_done = state["steps_done"]
        self.cost.load_state_dict(state["cost"])
        set_rng_state(state["rng"], self.generator)
        self.stream.load_state_dict(state["stream"])

    def evaluate(self, split: str) -> dict[str, float]:
        return evaluate(
            self.model,
            self.bundle.splits[split],
            self.objective.tasks,
            self.device,
            self.protocol.eval_batch_size,
            self.protocol.num_workers,
        )

    def constant_metrics(self, split: str) -> dict[str, float]:
        """Metrics of each task's best constant prediction on ``split`` (the starved floor)."""
        return constant_predictor_metrics(
            self.bundle.splits[split],
            self.objective.tasks,
            self.protocol.eval_batch_size,
            self.protocol.num_workers,
        )

    def test_loss(self) -> float:
        return split_loss(
            self.model,
            self.bundle.splits["test"],
            self.objective.tasks,
            dict(self.objective.loss_weights),
            self.device,
            self.protocol.eval_batch_size,
            self.protocol.num_workers,
        )

    def save_snapshot(self, step: int) -> None:
        self.run.artifact_torch(
            {"model": cpu_state_dict(self.model)}, (SNAPSHOTS, snapshot_file(step))
        )

    def train_for(
        self,
        masks: MaskSet,
        steps: int,
        lr: float | None = None,
        after_backward: AfterBackward | None = None,
        select: bool = False,
        readouts: tuple[int, ...] = (),
    ) -> None:
        """Train under ``masks``; metrics continue the cell's step count across phases. With
        ``select`` and ``protocol.checkpoint_selection=best_test_loss`` the model ends with the
        weights of its lowest test loss. When resuming, phases the killed run had finished are
        skipped (the checkpoint holds their outcome) and the checkpoint's phase continues after
        its saved step. At each step of ``readouts`` (counted in this phase; 0: before its
        first) the test metrics are logged as ``readout/<step>/...`` (a resumed phase does not
        repeat the readouts before its checkpoint)."""
        phase, self.phase = self.phase, self.phase + 1
        self.masks = masks
        point = None
        if self._resume is not None:
            if phase < self._resume.phase:
                return
            point, self._resume = self._resume, None
            self.load_state_dict(point.state)
        if 0 in self.plan.snapshot_steps and self.steps_done == 0 and point is None:
            self.save_snapshot(0)
        best = self._selection(masks, point) if select else None
        offset = self.steps_done

        def read_out(step: int) -> None:
            if step in readouts:
                metrics = self.evaluate("test")
                self.run.metrics(
                    {f"{READOUT}{step}/{k}": v for k, v in metrics.items()}, offset + step
                )

        if point is None:
            read_out(0)

        def on_step_end(step: int) -> None:
            self.cost.add_step(masks)
            read_out(step)
            if step in self.plan.snapshot_steps:
                self.save_snapshot(step)
            if best is not None:
                best.observe(step, final=step == steps)

        hooks = LoopHooks(
            validate=lambda: self.evaluate("val"),
            sink=self.run.metrics,
            after_backward=after_backward,
            on_step_end=on_step_end,
            checkpoints=self._checkpoints(phase, masks, best, point),
        )
        train(
            self.model,
            masks,
            self.stream,
            self.objective,
            self.protocol,
            Phase(steps, lr, self.steps_done, self.plan.label),
            hooks,
        )
        self.steps_done += steps
        if best is not None:
            chosen = best.restore()
            selected = {f"{SELECTED}best_step": chosen, f"{SELECTED}test_loss": best.best_loss}
            self.run.metrics(selected, self.steps_done)

    def _selection(self, masks: MaskSet, point: ResumePoint | None) -> BestCheckpoint | None:
        """Best-test-loss selection (``protocol.checkpoint_selection``), continued on resume."""
        if self.protocol.checkpoint_selection != "best_test_loss":
            return None
        best = BestCheckpoint(
            self.model,
            self.test_loss,
            self.protocol.selection_every,
            eligible=lambda: masks.sparsity() >= self.plan.target_sparsity - SPARSITY_TOLERANCE,
        )
        if point is not None and point.state["best"] is not None:
            best.load_state_dict(point.state["best"])
        return best

    def _checkpoints(
        self, phase: int, masks: MaskSet, best: BestCheckpoint | None, point: ResumePoint | None
    ) -> LoopCheckpoints:
        def save(step: int, optimizer, scheduler, first_loss: float | None) -> None:
            loop_state: dict[str, Any] = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "first_loss": first_loss,
                "best": best.state_dict() if best is not None else None,
            }
            state = {"phase": phase, "step": step, **self.state_dict(), **loop_state}
            self.run.artifact_torch(state, RESUME_CHECKPOINT)
            self.run.tags({RESUME_POINT: f"phase {phase} step {step}"})

        def continue_loop(optimizer, scheduler) -> tuple[int, float | None]:
            assert point is not None
            optimizer.load_state_dict(point.state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(point.state["scheduler"])
            return point.step, point.state["first_loss"]

        return LoopCheckpoints(
            self.protocol.checkpoint_every, save, continue_loop if point is not None else None
        )
