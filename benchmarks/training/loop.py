"""The training loop shared by every method: masked multitask training with periodic validation."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from benchmarks.training import preemption
from benchmarks.training.optim import make_optimizer, make_scheduler
from benchmarks.training.protocol import Protocol
from core.tasks import TaskSpec, weighted_task_losses
from methods.lifecycle import AfterBackward
from methods.masks import MaskSet

log = logging.getLogger(__name__)
MetricSink = Callable[[dict[str, float], int], None]


EXPLOSION_FACTOR = 1e3  # a loss above this times max(its first value, 1) has diverged


class DivergenceError(RuntimeError):
    """The loss became NaN, infinite or exploded, or the metrics are NaN; the cell is recorded
    as failed with the reason, instead of ranking a broken model."""


def check_metrics(metrics: Mapping[str, float], when: str) -> None:
    """Raise ``DivergenceError`` naming the metrics that are NaN."""
    broken = sorted(k for k, v in metrics.items() if math.isnan(v))
    if broken:
        raise DivergenceError(f"{', '.join(broken)} NaN {when}: the model diverged")


@dataclass(frozen=True)
class Objective:
    """What is minimised: the tasks' losses, weighted (a missing weight counts 1)."""

    tasks: tuple[TaskSpec, ...]
    loss_weights: Mapping[str, float] = field(default_factory=dict)


def precision(model: torch.nn.Module, protocol: Protocol) -> torch.autocast:
    """bf16 autocast of the forward pass and loss (``protocol.amp``); a no-op context if none."""
    device_type = next(model.parameters()).device.type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=protocol.amp == "bf16")


def in_memory_format(images: torch.Tensor, protocol: Protocol) -> torch.Tensor:
    """Images in channels-last layout when the protocol asks for it (the model is converted once
    by the runner)."""
    if protocol.channels_last:
        return images.contiguous(memory_format=torch.channels_last)
    return images


@dataclass
class LoopCheckpoints:
    """How a training loop saves and resumes: ``save(step, optimizer, scheduler, first_loss)``
    every ``every`` steps and when SIGTERM arrives; ``resume(optimizer, scheduler)`` (when
    resuming) loads their saved state and returns (the step to continue after, first loss)."""

    every: int | None
    save: Callable[[int, torch.optim.Optimizer, Any, float | None], None]
    resume: Callable[[torch.optim.Optimizer, Any], tuple[int, float | None]] | None = None


@dataclass(frozen=True)
class Phase:
    """One stretch of training: ``steps`` optimiser steps at ``lr`` (None: the protocol's), with
    metrics logged at ``step_offset + step`` (a cell's phases continue one step count)."""

    steps: int
    lr: float | None = None
    step_offset: int = 0
    description: str = "train"


@dataclass
class LoopHooks:
    """What the caller plugs into the loop. ``validate()`` gives validation metrics; ``sink``
    receives every logged metric; ``after_backward(step, optimizer, batch)`` runs between
    backward and the optimiser step (dynamic sparsity); ``on_step_end(step)`` after the step;
    ``checkpoints`` saves and resumes the loop."""

    validate: Callable[[], dict[str, float]] = dict
    sink: MetricSink = lambda metrics, step: None
    after_backward: AfterBackward | None = None
    on_step_end: Callable[[int], None] | None = None
    checkpoints: LoopCheckpoints | None = None


def train(
    model: torch.nn.Module,
    masks: MaskSet,
    batches: Iterator[dict[str, torch.Tensor]],
    objective: Objective,
    protocol: Protocol,
    phase: Phase,
    hooks: LoopHooks | None = None,
) -> None:
    """Run ``phase.steps`` optimiser steps on ``objective`` with ``masks`` re-applied after each
    one (continuing after a saved step when ``hooks.checkpoints.resume`` is given).

    Train losses go to ``hooks.sink`` every ``log_every`` steps; validation metrics every
    ``eval_every`` steps and at the end. Raises ``DivergenceError`` on a non-finite loss, a loss
    ``EXPLOSION_FACTOR`` times its first value (or 1), or NaN validation metrics. With
    ``checkpoints.every``, SIGTERM stops the loop after the current step, once it is saved
    (``benchmarks.training.preemption``).
    """
    loop = _Loop(model, objective, protocol, phase, hooks or LoopHooks())
    start = loop.resume()
    hook = masks.attach(model, loop.optimizer)
    model.train()
    bar = tqdm(
        range(start, phase.steps),
        desc=phase.description,
        leave=False,
        file=sys.stderr,
        disable=None,  # no bar when not on a terminal
    )
    loop.bar = bar
    try:
        with preemption.deferred(loop.every is not None):
            for step in bar:
                loop.step(step, next(batches))
    finally:
        hook.remove()
        bar.close()


class _Loop:
    """One training phase's optimiser, schedule and first loss, and what each step does."""

    def __init__(
        self,
        model: torch.nn.Module,
        objective: Objective,
        protocol: Protocol,
        phase: Phase,
        hooks: LoopHooks,
    ):
        self.model, self.objective, self.protocol, self.phase = model, objective, protocol, phase
        self.hooks = hooks
        self.optimizer = make_optimizer(model, protocol, phase.lr)
        self.scheduler = make_scheduler(self.optimizer, protocol, phase.steps)
        self.first_loss: float | None = None
        self.every = hooks.checkpoints.every if hooks.checkpoints is not None else None
        self.bar: Any = None

    def resume(self) -> int:
        """The step to start after (0, or a checkpoint's), restoring the loop's saved state."""
        checkpoints = self.hooks.checkpoints
        if checkpoints is None or checkpoints.resume is None:
            return 0
        start, self.first_loss = checkpoints.resume(self.optimizer, self.scheduler)
        return start

    def step(self, step: int, batch: dict[str, torch.Tensor]) -> None:
        model, protocol = self.model, self.protocol
        with precision(model, protocol):
            outputs = model(in_memory_format(batch["image"], protocol))
            loss, task_losses = weighted_task_losses(
                outputs, batch, self.objective.tasks, self.objective.loss_weights
            )
        self._check_loss(loss.item(), step, task_losses)  # the one host sync per step
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.hooks.after_backward is not None:
            self.hooks.after_backward(step, self.optimizer, batch)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        done = step + 1
        if self.hooks.on_step_end is not None:
            self.hooks.on_step_end(done)
        self._report(done, loss, task_losses)
        self._checkpoint(done)

    def _check_loss(self, value: float, step: int, task_losses: dict[str, torch.Tensor]) -> None:
        self.first_loss = value if self.first_loss is None else self.first_loss
        if not math.isfinite(value) or value > EXPLOSION_FACTOR * max(self.first_loss, 1.0):
            losses = {k: v.item() for k, v in task_losses.items()}
            raise DivergenceError(
                f"loss is {value:.4g} at step {step}, {self.first_loss:.4g} at its first step "
                f"({losses}); lower protocol.lr?"
            )

    def _report(self, done: int, loss: torch.Tensor, task_losses: dict[str, torch.Tensor]) -> None:
        """Train losses every ``log_every`` steps, validation every ``eval_every`` and last."""
        protocol, steps, sink = self.protocol, self.phase.steps, self.hooks.sink
        at = self.phase.step_offset + done
        if done % protocol.log_every == 0 or done == steps:
            losses = {"train/loss": loss.item()}
            losses.update({f"train/loss_{k}": v.item() for k, v in task_losses.items()})
            sink(losses, at)
            self.bar.set_postfix(loss=f"{loss.item():.4f}")
        if done % protocol.eval_every == 0 or done == steps:
            metrics = self.hooks.validate()
            sink({f"val/{k}": v for k, v in metrics.items()}, at)
            check_metrics(metrics, f"on the validation split at step {done}")
            description = self.phase.description
            log.info(
                "  %s step %d/%d loss %.4f | %s",
                description,
                done,
                steps,
                loss.item(),
                _short(metrics),
            )

    def _checkpoint(self, done: int) -> None:
        """Save every ``checkpoint_every`` steps and on SIGTERM (then stop)."""
        stop = preemption.stop_requested()
        due = self.every is not None and (
            stop or (done % self.every == 0 and done < self.phase.steps)
        )
        if self.hooks.checkpoints is not None and due:
            self.hooks.checkpoints.save(done, self.optimizer, self.scheduler, self.first_loss)
        if stop:
            raise KeyboardInterrupt(f"SIGTERM: stopped after step {done}, saved")


def _short(metrics: dict[str, float]) -> str:
    """The first (headline) metric of each task."""
    first: dict[str, str] = {}
    for key, value in metrics.items():
        first.setdefault(key.split("/")[0], f"{key} {value:.3g}")
    return ", ".join(first.values())
