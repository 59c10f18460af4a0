"""The training protocol (config group ``protocol``): one typed, validated schedule per file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks.training.selection import SELECTIONS
from core.options import check_choice, options_from_mapping

LR_SCHEDULES = ("cosine", "constant", "step")
LOSS_RESOLUTIONS = ("input", "output_stride")
AMP_MODES = ("none", "bf16")


def _option(meaning: str, identity: bool = True):
    """A required protocol option; ``identity=False``: it changes how a cell runs, not what it
    computes, so it is not part of the cell's identity (``benchmarks.cells.identity``)."""
    return field(metadata={"help": meaning, "identity": identity})


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
    readout_steps: tuple[int, ...] = _option(
        "test metrics of a model pruned after training (pretrained and structured methods) "
        "after this many of its fine-tuning steps (0: right after pruning), logged in the same "
        "run as readout/<step>/<task>/<metric>; []: none"
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
        "cell resumes from it (null: never; not part of the cell's identity)",
        identity=False,
    )
    num_workers: int = _option(
        "DataLoader worker processes reading training and evaluation batches; 0: in the "
        "training process (not part of the cell's identity)",
        identity=False,
    )
    amp: str = _option(
        "none, or bf16: training forward passes and losses under bfloat16 autocast (meant for "
        "GPUs; runs on the CPU too, slowly); evaluation stays float32"
    )
    channels_last: bool = _option(
        "channels-last memory format for model and training images (faster convolutions on "
        "recent GPUs)"
    )
    cudnn_benchmark: bool = _option(
        "on CUDA, cuDNN times its convolution algorithms for each shape and keeps the fastest: "
        "faster steps, results that differ at float rounding (as CPU and GPU already do; not "
        "part of the cell's identity)",
        identity=False,
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
        _check_rates(protocol)
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
        beyond = [s for s in protocol.readout_steps if not 0 <= s <= protocol.finetune_steps]
        if beyond:
            raise ValueError(
                f"protocol.readout_steps {beyond} lie outside the fine-tuning's "
                f"0..{protocol.finetune_steps} steps (protocol.finetune_steps): choose readouts "
                "within it"
            )
        late = [s for s in protocol.snapshot_steps if not 0 <= s <= protocol.steps]
        if late:
            raise ValueError(
                f"protocol.snapshot_steps {late} lie outside the dense run's 0..{protocol.steps} "
                "steps: the dense run could not save them (lth rewinds to them)"
            )
        return protocol


def _check_rates(protocol: Protocol) -> None:
    """Learning rates positive, weight decay non-negative, momentum in [0, 1)."""
    if not protocol.lr > 0.0:
        raise ValueError(f"protocol.lr must be > 0, got {protocol.lr}")
    if protocol.finetune_lr is not None and not protocol.finetune_lr > 0.0:
        raise ValueError(f"protocol.finetune_lr must be > 0 or null, got {protocol.finetune_lr}")
    if protocol.weight_decay < 0.0:
        raise ValueError(f"protocol.weight_decay must be >= 0, got {protocol.weight_decay}")
    if not 0.0 <= protocol.momentum < 1.0:
        raise ValueError(f"protocol.momentum must be in [0, 1), got {protocol.momentum}")
