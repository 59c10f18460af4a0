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
    hooks = hooks or LoopHooks()
    steps, description, step_offset = phase.steps, phase.description, phase.step_offset
    validate, sink, checkpoints = hooks.validate, hooks.sink, hooks.checkpoints
    after_backward, on_step_end = hooks.after_backward, hooks.on_step_end
    tasks, loss_weights = objective.tasks, objective.loss_weights
    optimizer = make_optimizer(model, protocol, phase.lr)
    scheduler = make_scheduler(optimizer, protocol, steps)
    start, first_loss = 0, None
    if checkpoints is not None and checkpoints.resume is not None:
        start, first_loss = checkpoints.resume(optimizer, scheduler)
    every = checkpoints.every if checkpoints is not None else None
    hook = masks.attach(model, optimizer)
    model.train()
    bar = tqdm(range(start, steps), desc=description, leave=False, file=sys.stderr, disable=None)
    try:
        with preemption.deferred(every is not None):
            for step in bar:
                batch = next(batches)
                with precision(model, protocol):
                    outputs = model(in_memory_format(batch["image"], protocol))
                    loss, task_losses = weighted_task_losses(outputs, batch, tasks, loss_weights)
                value = loss.item()  # the one host sync per step
                first_loss = value if first_loss is None else first_loss
                if not math.isfinite(value) or value > EXPLOSION_FACTOR * max(first_loss, 1.0):
                    losses = {k: v.item() for k, v in task_losses.items()}
                    raise DivergenceError(
                        f"loss is {value:.4g} at step {step}, {first_loss:.4g} at its first step "
                        f"({losses}); lower protocol.lr?"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if after_backward is not None:
                    after_backward(step, optimizer, batch)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                done = step + 1
                if on_step_end is not None:
                    on_step_end(done)
                if done % protocol.log_every == 0 or done == steps:
                    losses = {"train/loss": loss.item()}
                    losses.update({f"train/loss_{k}": v.item() for k, v in task_losses.items()})
                    sink(losses, step_offset + done)
                    bar.set_postfix(loss=f"{loss.item():.4f}")
                if done % protocol.eval_every == 0 or done == steps:
                    metrics = validate()
                    sink({f"val/{k}": v for k, v in metrics.items()}, step_offset + done)
                    check_metrics(metrics, f"on the validation split at step {done}")
                    log.info(
                        "  %s step %d/%d loss %.4f | %s",
                        description,
                        done,
                        steps,
                        loss.item(),
                        _short(metrics),
                    )
                stop = preemption.stop_requested()
                due = every is not None and (stop or (done % every == 0 and done < steps))
                if checkpoints is not None and due:
                    checkpoints.save(done, optimizer, scheduler, first_loss)
                if stop:
                    raise KeyboardInterrupt(f"SIGTERM: stopped after step {done}, saved")
    finally:
        hook.remove()
        bar.close()


def _short(metrics: dict[str, float]) -> str:
    """The first (headline) metric of each task."""
    first: dict[str, str] = {}
    for key, value in metrics.items():
        first.setdefault(key.split("/")[0], f"{key} {value:.3g}")
    return ", ".join(first.values())
