"""``python -m benchmarks.perf``: performance figures measured side by side in one run.

1. Masked vs dense training step on the default model, data size and batch: the two are timed in
   alternation (A B A B ...) so machine noise hits both alike; the ratio of medians is printed.
2. Per-cell wall time of the default sweep: one cell of each kind (dense, prune-at-init,
   prune-pretrained) is run into a throwaway MLflow store, and the default sweep's total is
   estimated from those measured times.
3. ``--inference``: what compression buys when the model runs (``benchmarks.tools.inference_perf``):
   dense, an unstructured 90% mask and 50% / 70% of the weights removed as channels, timed
   interleaved, on deeplab_resnet34 at 256x256, small_cnn, mobilenet_v2 and vit (channel
   removal refused where the suite cannot prune a network's channels, with the reason).
4. ``--workers N``: the same list of cells (every method at 90%, seed 0, shortened training) run
   one after another in this process and then on N worker processes, each into its own
   throwaway store; prints both wall times and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from benchmarks.cells.builders import cell_dataset, cell_model_parts
from benchmarks.sweep.device import resolve_device
from benchmarks.sweep.estimate import synchronize
from benchmarks.sweep.expand import expand_sweep
from benchmarks.tools.inference_perf import INFERENCE_MODELS
from benchmarks.tools.loader_perf import DEFAULT_SAMPLES
from benchmarks.tools.overrides import default_config
from benchmarks.training.optim import make_optimizer
from core.tasks import weighted_task_losses
from methods.budgets import masks_from_scores
from methods.lifecycle import MethodKind
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.registry import get_method


def step_times(
    device: torch.device, steps: int, sparsity: float, overrides: list[str]
) -> tuple[list[float], list[float]]:
    """Interleaved timings of dense and masked training steps (seconds per step)."""
    cell = expand_sweep(default_config(*overrides, "method=dense", "seed=0"))[0]
    bundle = cell_dataset(cell)
    protocol = cell.protocol_options
    batch = {
        k: torch.stack([bundle.splits["train"][i][k] for i in range(protocol.batch_size)]).to(
            device
        )
        for k in bundle.splits["train"][0]
    }
    runs = {}
    for name in ("dense", "masked"):
        torch.manual_seed(0)
        model = cell_model_parts(cell).hard_sharing(bundle.tasks).to(device).train()
        optimizer = make_optimizer(model, protocol)
        if name == "masked":
            params = prunable_parameters(model)
            scores = {n: torch.rand_like(p) for n, p in params.items()}
            masks = MaskSet(masks_from_scores(scores, sparsity, "global"), owners_of(model, params))
            masks.to(device).attach(model, optimizer)
        runs[name] = (model, optimizer)

    def one_step(name: str) -> float:
        model, optimizer = runs[name]
        synchronize(device)
        start = time.perf_counter()
        loss, _ = weighted_task_losses(model(batch["image"]), batch, bundle.tasks, {})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        return time.perf_counter() - start

    for name in runs:  # warm-up
        for _ in range(3):
            one_step(name)
    dense, masked = [], []
    for _ in range(steps):
        dense.append(one_step("dense"))
        masked.append(one_step("masked"))
    return dense, masked


def cell_times(device: torch.device, overrides: list[str]) -> dict[str, float]:
    """Wall time of one default cell per kind, run into a throwaway store."""
    from benchmarks.cells.execute import run_cell  # MLflow is needed only for this part
    from benchmarks.cells.resources import CellResources
    from benchmarks.tracking.store import Tracker

    picks = {
        "dense": ("dense", 0.0),
        "static": ("snip", 0.9),
        "pretrained": ("magnitude", 0.9),
        "structured": ("channel_magnitude", 0.9),
    }
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        resources = CellResources(Tracker(f"sqlite:///{tmp}/perf.db", "perf"), device)
        for kind, (method, sparsity) in picks.items():
            cell = expand_sweep(
                default_config(*overrides, f"method={method}", f"sparsity={sparsity}", "seed=0")
            )[0]
            start = time.perf_counter()
            run_cell(resources, cell)
            times[kind] = time.perf_counter() - start
    return times


def sweep_seconds(workers: int, overrides: list[str]) -> tuple[float, int]:
    """(wall seconds, cells) of a sweep run on ``workers`` processes into a throwaway store."""
    from benchmarks.sweep.setup import execute_sweep, prepare_sweep

    with tempfile.TemporaryDirectory() as tmp:
        cfg = default_config(
            *overrides,
            f"workers={workers}",
            "threads_per_cell=null",  # cores/workers: 1 process gets every core
            f"tracking.uri=sqlite:///{tmp}/s.db",
        )
        cells, resources, count, threads = prepare_sweep(cfg)
        start = time.perf_counter()
        report = execute_sweep(cells, resources, count, threads)
        seconds = time.perf_counter() - start
    if report.failed:
        raise RuntimeError(report.summary())
    return seconds, len(cells)


def print_loader_throughput(samples: Path, worker_counts: list[int], appetite: float) -> None:
    """Images/s the NYUv2 loader delivers, beside the images/s the measured step consumes."""
    from benchmarks.tools.loader_perf import nyuv2_throughput

    rates = nyuv2_throughput(samples, worker_counts)
    print("real-data loading (NYUv2 shared samples replicated, 321x321 crop + flip, batch 8):")
    for workers, rate in rates.items():
        print(f"  {workers} loader workers: {rate:8.1f} images/s")
    print(f"  the dense step above consumes {appetite:8.1f} images/s")


def print_loader_costs(samples: Path) -> None:
    """CPU ms per image of today's data path and the array cache, and the loader cores an H200
    would need at each (``benchmarks.tools.loader_perf``)."""
    from tabulate import tabulate

    from benchmarks.tools.loader_perf import (
        PAPER_CROP,
        UTILISATION,
        gpu_appetite,
        nyuv2_loader_costs,
        training_gflop_per_image,
    )

    costs = nyuv2_loader_costs(samples)
    gflop = training_gflop_per_image()
    appetite = gpu_appetite(gflop)
    crop = "x".join(map(str, PAPER_CROP))
    print(
        f"NYUv2 loader, CPU ms per image (one thread; shared samples at 480x640, {crop} crop, "
        "scale and flip for training, full size for evaluation):"
    )
    rows = []
    for cost in costs:
        cores = {p: [r * cost.train_ms / 1e3 for r in rates] for p, rates in appetite.items()}
        rows.append(
            [
                cost.name,
                f"{cost.train_ms:.1f}",
                f"{cost.eval_ms:.1f}",
                f"{1e3 / cost.train_ms:.0f}",
                *(f"{lo:.1f}-{hi:.1f}" for lo, hi in cores.values()),
            ]
        )
    header = ["path", "train ms/img", "eval ms/img", "train img per core-s"]
    header += [f"H200 loader cores ({p})" for p in appetite]
    print(tabulate(rows, headers=header, tablefmt="github"))
    share = "-".join(f"{u:.0%}" for u in UTILISATION)
    rates = "; ".join(f"{p} {lo:.0f}-{hi:.0f}" for p, (lo, hi) in appetite.items())
    print(
        f"an H200 at {share} of its dense peak trains {rates} images/s of deeplab_resnet34 "
        f"(aspp_fc, seg 40 + normal) at {crop}: {gflop:.0f} GFLOP per training image "
        "(3 x 2 x the suite's MAC count)"
    )
    print(f"  ({costs[0].train_ms / costs[1].train_ms:.2f}x less CPU per training image cached)")


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """``--inference`` and what it measures (``benchmarks.tools.inference_perf``)."""
    parser.add_argument(
        "--inference",
        action="store_true",
        help="also print what compression buys at inference: dense, unstructured 90%%, 50%% and "
        "70%% of the weights as channels, on deeplab_resnet34, small_cnn, mobilenet_v2 and vit "
        "(several minutes)",
    )
    parser.add_argument(
        "--inference-models",
        nargs="+",
        choices=INFERENCE_MODELS,
        default=list(INFERENCE_MODELS),
        help="the networks --inference measures (default: %(default)s)",
    )
    parser.add_argument(
        "--deeplab-side",
        type=int,
        default=256,
        help="input side of deeplab_resnet34 for --inference (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved timing rounds for --inference (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for --inference, as the default sweep's cells (default: %(default)s)",
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.perf",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--sparsity", type=float, default=0.9, help="mask sparsity (default 0.9)")
    parser.add_argument("--skip-cells", action="store_true", help="only the step-time ratio")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="also time a short sweep on 1 and on N worker processes (0: skip)",
    )
    parser.add_argument(
        "--loaders",
        action="store_true",
        help="also time the real NYUv2 loader (shared samples, replicated) at --loader-workers",
    )
    parser.add_argument(
        "--loader",
        action="store_true",
        help="also print the CPU ms per training and evaluation image of the NYUv2 loader, "
        "reading its files and from the array cache, and the loader cores an H200 would need",
    )
    parser.add_argument(
        "--loader-workers",
        type=int,
        nargs="+",
        default=[0, 2],
        metavar="N",
        help="DataLoader worker counts for --loaders (default: 0 2)",
    )
    parser.add_argument(
        "--nyuv2-samples",
        type=Path,
        default=DEFAULT_SAMPLES,
        help="folder of NYUv2 samples in the AdaShare layout (default: %(default)s)",
    )
    add_inference_arguments(parser)
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Hydra override of the benchmark config (repeatable), e.g. model=deeplab_resnet34",
    )
    return parser.parse_args(argv)


def print_step_ratio(device: torch.device, args: argparse.Namespace) -> float:
    """Masked vs dense training step, interleaved; returns the dense step's median seconds."""
    dense, masked = step_times(device, args.steps, args.sparsity, args.override)
    d, m = statistics.median(dense), statistics.median(masked)
    setting = " ".join(args.override) or "default model, data and batch"
    print(f"training step, {setting} ({args.steps} interleaved steps each):")
    print(f"  dense  median {1000 * d:8.2f} ms")
    print(f"  masked median {1000 * m:8.2f} ms  (sparsity {args.sparsity:g}, mask after each step)")
    print(f"  masked / dense = {m / d:.3f}   (goal <= 1.05)")
    return d


def print_worker_speedup(workers: int, overrides: list[str]) -> None:
    short = [*overrides, "sparsity=0.9", "seed=0", "protocol.steps=200"]
    short += ["protocol.finetune_steps=100", "protocol.eval_every=100"]
    one, cells = sweep_seconds(1, short)
    many, _ = sweep_seconds(workers, short)
    print(f"sweep of {cells} cells (every method at 90%, seed 0, 200 steps):")
    print(f"  1 process, {torch.get_num_threads()} threads: {one:7.1f} s")
    print(f"  {workers} worker processes:       {many:7.1f} s")
    print(f"  speed-up {one / many:.2f}x")


def print_cell_times(device: torch.device, overrides: list[str]) -> None:
    """One measured cell per kind, and the default sweep's time estimated from them."""
    times = cell_times(device, overrides)
    print("per-cell wall time of the default sweep (one measured cell per kind):")
    for kind, seconds in times.items():
        print(f"  {kind:17s} {seconds:7.1f} s")
    sweep = expand_sweep(default_config(*overrides))
    kinds = Counter(get_method(c.method_name).kind for c in sweep)
    kind_time = {
        MethodKind.DENSE: times["dense"],
        MethodKind.STATIC: times["static"],
        MethodKind.DYNAMIC: times["static"],
        MethodKind.PRETRAINED: times["pretrained"],
        MethodKind.STRUCTURED: times["structured"],
        MethodKind.ARCHITECTURE: times["dense"],
    }
    total = sum(kind_time[k] * n for k, n in kinds.items())
    print(f"  default sweep: {len(sweep)} cells, estimated {total / 60:.1f} min on this machine")


def print_inference(args: argparse.Namespace) -> None:
    """What each kind of compression buys at inference (``benchmarks.tools.inference_perf``)."""
    from tabulate import tabulate

    from benchmarks.inference.measure import LatencyPlan
    from benchmarks.tools.inference_perf import measure, networks

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    cell = expand_sweep(default_config(*args.override, "method=dense", "seed=0"))[0]
    side = cell_dataset(cell).image_shape[1:]
    header = [
        "network",
        "prunable weights",
        "executed GMACs (x dense)",
        "state dict / gzip MB",
        "latency b1 / b8 (x dense)",
        "train step (x dense)",
        "train peak memory",
    ]
    plan = LatencyPlan(min_rounds=args.rounds, max_rounds=args.rounds, min_time_s=0.01)
    for network in networks(args.deeplab_side, tuple(side), args.inference_models):
        print(
            f"\n{network.label}, {args.threads} thread(s), {args.rounds} interleaved rounds "
            f"(train step at batch {network.train_batch}):"
        )
        print(tabulate(measure(network, plan, args.rounds), headers=header, tablefmt="github"))
    torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    device = resolve_device(args.device)
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    if args.inference:
        print_inference(args)
    dense_step_s = print_step_ratio(device, args)
    if args.loader:
        print_loader_costs(args.nyuv2_samples)
    if args.loaders:
        batch = default_config(*args.override).protocol.batch_size
        print_loader_throughput(args.nyuv2_samples, args.loader_workers, batch / dense_step_s)
    if args.workers:
        print_worker_speedup(args.workers, args.override)
    if not args.skip_cells:
        print_cell_times(device, args.override)
