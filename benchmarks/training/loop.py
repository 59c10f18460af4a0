"""The training loop shared by every method: masked multitask training with periodic validation."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from benchmarks.training import preemption
from benchmarks.training.selection import SELECTIONS
from core.options import check_choice, options_from_mapping
from core.tasks import TaskSpec, weighted_task_losses
from methods.lifecycle import AfterBackward
from methods.masks import MaskSet

log = logging.getLogger(__name__)
MetricSink = Callable[[dict[str, float], int], None]
LR_SCHEDULES = ("cosine", "constant", "step")
LOSS_RESOLUTIONS = ("input", "output_stride")
AMP_MODES = ("none", "bf16")


EXPLOSION_FACTOR = 1e3  # a loss above this times max(its first value, 1) has diverged


class DivergenceError(RuntimeError):
    """The loss became NaN, infinite or exploded, or the metrics are NaN; the cell is recorded
    as failed with the reason, instead of ranking a broken model."""


def check_metrics(metrics: Mapping[str, float], when: str) -> None:
    """Raise ``DivergenceError`` naming the metrics that are NaN."""
    broken = sorted(k for k, v in metrics.items() if math.isnan(v))
    if broken:
        raise DivergenceError(f"{', '.join(broken)} NaN {when}: the model diverged")


def _option(meaning: str):
    return field(metadata={"help": meaning})


@dataclass(frozen=True)
class Protocol:
    """Training schedule (config group ``protocol``). No field has a default: each protocol file
    states every option, so a protocol is read in one place."""

    name: str = _option("protocol name (the file name)")
    batch_size: int = _option("training batch size")
    steps: int = _option(
        "optimiser steps when training from scratch (dense, prune-at-init, dynamic, architectures)"
    )
    finetune_steps: int = _option("steps after pruning a trained dense model (pretrained methods)")
    optimizer: str = _option("adam or sgd")
    lr: float = _option("learning rate")
    momentum: float = _option("SGD momentum (sgd only)")
    weight_decay: float = _option("L2 weight decay")
    lr_schedule: str = _option(
        "cosine (to zero over each training run), constant, or step (x lr_step_gamma every "
        "lr_step_every steps)"
    )
    lr_step_every: int = _option("steps between learning-rate drops (lr_schedule=step)")
    lr_step_gamma: float = _option("factor of each learning-rate drop (lr_schedule=step)")
    finetune_lr: float | None = _option(
        "learning rate after pruning a trained model (pretrained methods); null: lr"
    )
    eval_every: int = _option("validation metrics every this many steps (and at the end)")
    eval_batch_size: int = _option("evaluation batch size")
    log_every: int = _option("train loss logged every this many steps")
    snapshot_steps: tuple[int, ...] = _option(
        "dense runs keep their weights at these steps (what lth rewinds to)"
    )
    loss_resolution: str = _option(
        "input (predictions upsampled to the labels) or output_stride (labels downsampled to the "
        "network's output, nearest; the authors' protocol)"
    )
    checkpoint_selection: str = _option(
        "which weights a cell reports: last, or best_test_loss (the authors' protocol: the "
        "lowest test loss; selection on the test set, for reproducing the paper only)"
    )
    selection_every: int = _option("steps between test-loss checks (best_test_loss only)")
    checkpoint_every: int | None = _option(
        "save a resumable checkpoint every this many steps and on SIGTERM; a rerun of the killed "
        "cell resumes from it (null: never; not part of the config hash)"
    )
    num_workers: int = _option(
        "DataLoader worker processes reading training batches; 0: in the training process "
        "(not part of the config hash)"
    )
    amp: str = _option(
        "none, or bf16: training forward passes and losses under bfloat16 autocast (meant for "
        "GPUs; runs on the CPU too, slowly); evaluation stays float32"
    )
    channels_last: bool = _option(
        "channels-last memory format for model and training images (faster convolutions on "
        "recent GPUs)"
    )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Protocol:
        protocol = options_from_mapping(cls, config, "protocol")
        check_choice("protocol.optimizer", protocol.optimizer, ("adam", "sgd"))
        check_choice("protocol.lr_schedule", protocol.lr_schedule, LR_SCHEDULES)
        check_choice("protocol.loss_resolution", protocol.loss_resolution, LOSS_RESOLUTIONS)
        check_choice("protocol.checkpoint_selection", protocol.checkpoint_selection, SELECTIONS)
        check_choice("protocol.amp", protocol.amp, AMP_MODES)
        if protocol.checkpoint_every is not None and protocol.checkpoint_every < 1:
            raise ValueError(
                f"protocol.checkpoint_every must be >= 1 or null, got {protocol.checkpoint_every}"
            )
        if protocol.num_workers < 0:
            raise ValueError(f"protocol.num_workers must be >= 0, got {protocol.num_workers}")
        if not 0.0 < protocol.lr_step_gamma <= 1.0:
            raise ValueError(
                f"protocol.lr_step_gamma must be in (0, 1], got {protocol.lr_step_gamma}"
            )
        for name in (
            "steps",
            "batch_size",
            "eval_every",
            "eval_batch_size",
            "log_every",
            "lr_step_every",
            "selection_every",
        ):
            if getattr(protocol, name) < 1:
                raise ValueError(f"protocol.{name} must be >= 1")
        if protocol.steps < 1 or protocol.finetune_steps < 0:
            raise ValueError(
                f"protocol.steps must be >= 1 and protocol.finetune_steps >= 0, got "
                f"{protocol.steps} and {protocol.finetune_steps}"
            )
        late = [s for s in protocol.snapshot_steps if not 0 <= s <= protocol.steps]
        if late:
            raise ValueError(
                f"protocol.snapshot_steps {late} lie outside the dense run's 0..{protocol.steps} "
                "steps: the dense run could not save them (lth rewinds to them)"
            )
        return protocol


def parameter_groups(model: torch.nn.Module, lr: float) -> list[dict[str, Any]]:
    """One group at ``lr``, plus one per ``model.lr_multipliers`` entry (parameter-name prefix ->
    factor): the references train cross-stitch and NDDR units at 100x the network's lr."""
    multipliers: Mapping[str, float] = getattr(model, "lr_multipliers", {})
    groups: dict[str, list[torch.nn.Parameter]] = {prefix: [] for prefix in multipliers}
    base = []
    for name, param in model.named_parameters():
        prefix = next((p for p in multipliers if name.startswith(p)), None)
        (groups[prefix] if prefix is not None else base).append(param)
    return [{"params": base, "lr": lr}] + [
        {"params": params, "lr": lr * multipliers[prefix]}
        for prefix, params in groups.items()
        if params
    ]


def make_optimizer(
    model: torch.nn.Module, protocol: Protocol, lr: float | None = None
) -> torch.optim.Optimizer:
    """The protocol's optimiser at ``lr`` (default: the protocol's training lr)."""
    lr = protocol.lr if lr is None else lr
    groups = parameter_groups(model, lr)
    # foreach: one fused update over all tensors (on the CPU torch defaults to a per-tensor
    # loop: 1.7 vs 0.9 ms per step on the default model)
    if protocol.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=protocol.weight_decay, foreach=True)
    return torch.optim.SGD(
        groups,
        lr=lr,
        momentum=protocol.momentum,
        weight_decay=protocol.weight_decay,
        foreach=True,
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer, protocol: Protocol, steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The protocol's learning-rate schedule over a training run of ``steps`` steps."""
    if protocol.lr_schedule == "cosine" and steps > 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    if protocol.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=protocol.lr_step_every, gamma=protocol.lr_step_gamma
        )
    return None


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


class BatchStream:
    """Shuffled training batches forever (reshuffled each epoch from ``generator``), moved to
    ``device``, read by ``num_workers`` loader processes (0: in this one). Its position can be
    saved and restored: a resumed cell sees the batches an uninterrupted one would have.

    Workers are not persistent: they restart each epoch, so every epoch's shuffle and the
    workers' augmentation seeds come from ``generator`` alone, which keeps the order the same
    with any number of workers (without augmentation) and a resume exact. The restart costs
    once per epoch."""

    def __init__(
        self,
        split: Dataset,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
        num_workers: int = 0,
    ):
        self.loader = DataLoader(
            split,
            batch_size=min(batch_size, len(split)),  # type: ignore[arg-type]
            shuffle=True,
            drop_last=True,
            generator=generator,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
        )
        self.generator, self.device = generator, device
        self._epoch: Iterator[dict[str, torch.Tensor]] | None = None
        self._epoch_start = generator.get_state()  # the shuffle of the current epoch comes from it
        self._taken = 0  # batches of the current epoch already returned

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        while True:
            if self._epoch is None:
                self._epoch_start = self.generator.get_state()
                self._epoch, self._taken = iter(self.loader), 0
            try:
                batch = next(self._epoch)
            except StopIteration:
                self._epoch = None
                continue
            self._taken += 1
            return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_start": self._epoch_start, "taken": self._taken}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replay the saved epoch's shuffle and skip the batches it had already returned (at most
        one epoch of reading)."""
        self.generator.set_state(state["epoch_start"])
        self._epoch_start = state["epoch_start"]
        self._epoch, self._taken = iter(self.loader), 0
        for _ in range(state["taken"]):
            next(self._epoch)
            self._taken += 1


@dataclass
class LoopCheckpoints:
    """How a training loop saves and resumes: ``save(step, optimizer, scheduler, first_loss)``
    every ``every`` steps and when SIGTERM arrives; ``resume(optimizer, scheduler)`` (when
    resuming) loads their saved state and returns (the step to continue after, first loss)."""

    every: int | None
    save: Callable[[int, torch.optim.Optimizer, Any, float | None], None]
    resume: Callable[[torch.optim.Optimizer, Any], tuple[int, float | None]] | None = None


def train(
    model: torch.nn.Module,
    masks: MaskSet,
    batches: Iterator[dict[str, torch.Tensor]],
    tasks: tuple[TaskSpec, ...],
    loss_weights: Mapping[str, float],
    protocol: Protocol,
    steps: int,
    validate: Callable[[], dict[str, float]],
    sink: MetricSink,
    description: str = "train",
    after_backward: AfterBackward | None = None,
    on_step_end: Callable[[int], None] | None = None,
    step_offset: int = 0,
    lr: float | None = None,
    checkpoints: LoopCheckpoints | None = None,
) -> None:
    """Run ``steps`` optimiser steps with ``masks`` re-applied after each one (continuing after
    a saved step when ``checkpoints.resume`` is given).

    Train losses go to ``sink`` every ``log_every`` steps; validation metrics every ``eval_every``
    steps and at the end (logged at ``step_offset + step``). ``after_backward(step, optimizer,
    batch)`` runs between backward and the optimiser step (dynamic sparsity); ``on_step_end(step)``
    after it. Raises ``DivergenceError`` on a non-finite loss, a loss ``EXPLOSION_FACTOR`` times
    its first value (or 1), or NaN validation metrics. With ``checkpoints.every``, SIGTERM stops
    the loop after the current step, once it is saved (``benchmarks.training.preemption``).
    """
    optimizer = make_optimizer(model, protocol, lr)
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
