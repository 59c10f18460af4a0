"""How long a sweep will take on this hardware, before spending it (``python -m
benchmarks.estimate``, and a sweep's start on CUDA: the ``estimate`` option).

Measured here, per setting (dataset, model, protocol), one worker as a sweep runs it (the
protocol's batch, the dataset's crop, ``threads_per_cell`` threads on a CPU, one GPU on CUDA): a
dense training step (after warm-up), the CPU time the data path spends per training and per
evaluation image, and an evaluation forward pass. Counted from the config: each cell's training
steps (the method's own count, IMP/LTH rounds included), its selection passes over the test split
(``best_test_loss``), its validation passes and its final evaluation. A step waits for the loader
when ``protocol.num_workers`` processes cannot read a batch in the time the device computes one.
The wall time on N workers (GPUs on CUDA) is the sweep's cell time divided among them, or its
longest cell when that is longer. Runs log the true figures (``budget/train_steps``,
``time/cell_s``): compare before trusting the estimate for a new setting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from tabulate import tabulate

from benchmarks.cells.builders import cell_method, cell_model_parts
from benchmarks.cells.cell import Cell
from benchmarks.inference.cost import BATCH_SIZES
from benchmarks.inference.measure import DEFAULT_PLAN
from benchmarks.training.optim import make_optimizer
from benchmarks.training.protocol import Protocol
from core.tasks import weighted_task_losses
from datasets.registry import DatasetBundle
from methods.lifecycle import Method, MethodKind
from methods.options import IterativeOptions
from methods.schedules import round_sparsities

log = logging.getLogger(__name__)
TYPICAL_ROUNDS = 10  # latency rounds until the ratio's interval is narrow (5 to 25)


@dataclass(frozen=True)
class SettingSpeed:
    """Seconds measured for one setting on one worker."""

    step_s: float  # a training step's compute
    train_read_s: float  # CPU seconds to read (decode, augment) one training image
    eval_forward_s: float  # one evaluation image's forward pass
    eval_read_s: float  # CPU seconds to read one evaluation image
    loader_workers: int  # protocol.num_workers

    def _with_reading(self, compute_s: float, read_s: float) -> float:
        if self.loader_workers == 0:  # read in the training process, one after the other
            return compute_s + read_s
        return max(compute_s, read_s / self.loader_workers)

    def train_step_s(self, batch_size: int) -> float:
        return self._with_reading(self.step_s, batch_size * self.train_read_s)

    def pass_s(self, images: int) -> float:
        return images * self._with_reading(self.eval_forward_s, self.eval_read_s)


def planned_steps(method: Method, protocol: Protocol, sparsity: float) -> int:
    """Optimiser steps of the cell (its source's not included): the method's count of its final
    training, plus the retraining between IMP/LTH rounds."""
    counts = SimpleNamespace(  # what training_steps reads of a PruneContext
        steps=protocol.steps, finetune_steps=protocol.finetune_steps, sparsity=sparsity
    )
    steps = method.training_steps(counts)  # type: ignore[arg-type]
    options = method.options
    if isinstance(options, IterativeOptions):
        rounds = len(round_sparsities(sparsity, options.rounds, options.fraction)) - 1
        steps += rounds * options.steps_per_round(protocol.finetune_steps)
    return steps


def cell_seconds(cell: Cell, speed: SettingSpeed, bundle: DatasetBundle) -> float:
    protocol = cell.protocol_options
    steps = planned_steps(cell_method(cell), protocol, cell.sparsity)
    seconds = steps * speed.train_step_s(protocol.batch_size)
    test, val = (len(bundle.splits[s]) for s in ("test", "val"))  # type: ignore[arg-type]
    if protocol.checkpoint_selection == "best_test_loss":
        seconds += (steps // protocol.selection_every + 1) * speed.pass_s(test)
    if protocol.eval_every:
        seconds += (steps // protocol.eval_every) * speed.pass_s(val)
    return seconds + speed.pass_s(test) + inference_seconds(speed, bundle)


def inference_seconds(speed: SettingSpeed, bundle: DatasetBundle) -> float:
    """The inference measurement (``benchmarks.inference``): three networks timed per round at
    batch 1 and 8 (each timing at least ``min_time_s``), about ten rounds, bounded by
    ``max_seconds`` per batch size, at the training image size."""
    plan = DEFAULT_PLAN
    train_pixels = bundle.train_image_shape[1] * bundle.train_image_shape[2]
    forward_s = speed.eval_forward_s * train_pixels / (bundle.resolution[0] * bundle.resolution[1])
    seconds = 0.0
    for batch in BATCH_SIZES:
        round_s = 3 * max(plan.min_time_s, batch * forward_s)
        seconds += min(plan.max_seconds + round_s, TYPICAL_ROUNDS * round_s)
    return seconds


def cpu_ms_per_image(split, count: int) -> float:
    """CPU time of this process per sample read from ``split`` (after a warm-up read)."""
    torch.manual_seed(0)
    split[0]
    start = time.process_time()
    for index in range(count):
        split[index % len(split)]
    return (time.process_time() - start) * 1e3 / count


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (timings on CUDA end when the work does)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step, repeats: int, device: torch.device) -> float:
    """Median seconds of ``step()`` after one warm-up call."""
    step()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def network_of(cell: Cell) -> str:
    """Cells whose networks train at one speed: an architecture's own, else the hard-sharing
    network (masks cost about nothing per step: ``benchmarks.perf``; channel-pruned networks
    are faster, so their cells are over- rather than underestimated)."""
    return cell.method_name if cell_method(cell).kind == MethodKind.ARCHITECTURE else "shared"


def measure_setting(cell: Cell, bundle: DatasetBundle, device: torch.device, repeats: int):
    """A training step and an evaluation forward of ``cell``'s network, and its data path."""
    protocol = cell.protocol_options
    train, test = bundle.splits["train"], bundle.splits["test"]
    torch.manual_seed(0)
    items = [train[i % len(train)] for i in range(protocol.batch_size)]  # type: ignore[arg-type]
    batch = {k: torch.stack([item[k] for item in items]).to(device) for k in items[0]}
    model = cell_method(cell).build_network(cell_model_parts(cell), bundle.tasks)
    model = model.to(device).train()
    optimizer = make_optimizer(model, protocol)

    def train_step() -> None:
        loss, _ = weighted_task_losses(model(batch["image"]), batch, bundle.tasks, {})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step_s = _timed(train_step, repeats, device)
    images = torch.stack([test[0]["image"]] * min(protocol.eval_batch_size, 8)).to(device)
    model.eval()
    with torch.no_grad():
        forward_s = _timed(lambda: model(images), repeats, device) / len(images)
    reads = max(4, min(16, len(train)))  # type: ignore[arg-type]
    return SettingSpeed(
        step_s,
        cpu_ms_per_image(train, reads) / 1e3,
        forward_s,
        cpu_ms_per_image(test, reads) / 1e3,
        protocol.num_workers,
    )


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def estimate_report(
    cells: list[Cell],
    dataset: Callable[[Cell], DatasetBundle],
    device: torch.device,
    workers: list[int],
    repeats: int = 3,
) -> str:
    """The measured table and the estimated wall time of ``cells`` on each worker count."""
    settings: dict[str, list[Cell]] = {}
    for cell in cells:
        settings.setdefault(cell.setting_id, []).append(cell)
    rows, every_cell = [], []
    for group in settings.values():
        bundle = dataset(group[0])
        networks: dict[str, list[Cell]] = {}
        for cell in group:
            networks.setdefault(network_of(cell), []).append(cell)
        for network, cells_of_network in networks.items():
            speed = measure_setting(cells_of_network[0], bundle, device, repeats)
            seconds = [cell_seconds(cell, speed, bundle) for cell in cells_of_network]
            every_cell += seconds
            batch = group[0].protocol_options.batch_size
            rows.append(
                [
                    f"{group[0].dataset['name']} / {group[0].model['name']} / "
                    f"{group[0].protocol['name']}",
                    network,
                    len(cells_of_network),
                    f"{speed.step_s * 1e3:.1f} ms",
                    f"{speed.train_read_s * 1e3:.1f} / {speed.eval_read_s * 1e3:.1f} ms",
                    f"{speed.train_step_s(batch) / speed.step_s:.2f}",
                    hours(sum(seconds)),
                ]
            )
    header = ["setting", "network", "cells", "step", "read train / eval img", "step x loader"]
    header.append("cell time")
    lines = [f"measured on {device} ({torch.get_num_threads()} threads), {len(cells)} cells:"]
    lines.append(tabulate(rows, headers=header, tablefmt="github"))
    total, longest = sum(every_cell), max(every_cell)
    for count in workers:
        wall = max(total / count, longest)
        lines.append(f"estimated wall time on {count} worker(s): {hours(wall)}")
    return "\n".join(lines)


def wants_estimate(choice: object, device: torch.device) -> bool:
    """The ``estimate`` option: ``auto`` estimates on CUDA only."""
    if str(choice) == "auto":
        return device.type == "cuda"
    if isinstance(choice, bool):
        return choice
    raise ValueError(f"estimate={choice!r}: choose auto, true or false")


def log_estimate(cells: list[Cell], resources, workers: int) -> None:
    """Log the estimated wall time of the cells not yet finished, on ``workers`` workers."""
    todo = [cell for cell in cells if resources.tracker.find_finished(cell.key) is None]
    if todo:
        report = estimate_report(todo, resources.dataset, resources.device, [workers])
        log.info("before running %d cell(s):\n%s", len(todo), report)
