"""``python -m benchmarks.perf --inference``: what each kind of compression buys when the model
runs, measured side by side in one process.

For each network (DeepLab-ResNet34 with ASPP heads at 256x256 and NYUv2's tasks, segmentation 40
classes + normals; the default ``small_cnn``, and ``mobilenet_v2`` and ``vit`` as their
experiments configure them, at the default sweep's resolution), four models: the
dense network, an unstructured 90% mask (random, on dense kernels), and 50% and 70% of the
prunable weights removed as whole channels (random channels, layer-uniform, the suite's
structured surgery). Printed as ratios to dense: parameters kept, executed MACs, state dict and
gzip MB, latency at batch 1 and 8 (all four timed interleaved, in random order per round, median
of per-round ratios), a training step (forward, backward, optimiser; interleaved), and peak
memory of a training forward and backward pass. Where the suite cannot remove a network's
channels (the transformer's attention) the row says why.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from benchmarks.inference.measure import (
    LatencyPlan,
    _LiveStorage,
    interleaved_latency,
    median_ratio,
    storage_sizes,
)
from core.tasks import make_task, weighted_task_losses
from methods.channel_graph import ChannelGraph
from methods.channel_selection import ranked_removal
from methods.masks import MaskSet, owners_of, prunable_parameters
from methods.networks import model_parts
from methods.networks.complexity import count_macs

MB = 1e6


@dataclass(frozen=True)
class Network:
    label: str
    model: str
    options: dict
    tasks: tuple
    shape: tuple[int, int, int]
    train_batch: int


INFERENCE_MODELS = ("deeplab_resnet34", "small_cnn", "mobilenet_v2", "vit")


def networks(
    deeplab_side: int, small_side: tuple[int, int], models: Sequence[str] = INFERENCE_MODELS
) -> list[Network]:
    """The measured networks of ``models`` (names of ``INFERENCE_MODELS``)."""
    nyu = (make_task("seg", num_classes=40), make_task("normal"))
    every = [
        Network(
            f"deeplab_resnet34 (aspp), seg 40 + normal, {deeplab_side}x{deeplab_side}",
            "deeplab_resnet34",
            {"head": "aspp"},
            nyu,
            (3, deeplab_side, deeplab_side),
            2,
        ),
        Network(
            f"small_cnn, seg 7 + normal, {small_side[0]}x{small_side[1]}",
            "small_cnn",
            {},
            (make_task("seg", num_classes=7), make_task("normal")),
            (3, *small_side),
            8,
        ),
        Network(  # as experiment=mobilenet and experiment=vit run them
            f"mobilenet_v2 (width 0.35), seg 7 + normal, {small_side[0]}x{small_side[1]}",
            "mobilenet_v2",
            {"width": 0.35, "head_channels": 32},
            (make_task("seg", num_classes=7), make_task("normal")),
            (3, *small_side),
            8,
        ),
        Network(
            f"vit (dim 64, depth 4), seg 7 + normal, {small_side[0]}x{small_side[1]}",
            "vit",
            {"head_channels": 16},
            (make_task("seg", num_classes=7), make_task("normal")),
            (3, *small_side),
            8,
        ),
    ]
    return [network for network in every if network.model in models]


def variants(network: Network) -> tuple[dict[str, nn.Module], dict[str, str]]:
    """Dense, unstructured 90% mask, 50% and 70% of the weights removed as channels; and, for
    a network whose channels cannot be removed, why (variant name -> reason)."""
    generator = torch.Generator().manual_seed(0)

    def fresh() -> nn.Module:
        torch.manual_seed(0)
        parts = model_parts(network.model, network.options)
        return parts.hard_sharing(network.tasks).eval()

    models = {"dense": fresh(), "unstructured 90% mask": fresh()}
    with torch.no_grad():
        for weight in prunable_parameters(models["unstructured 90% mask"]).values():
            weight[torch.rand(weight.shape, generator=generator) < 0.9] = 0
    refused = {}
    for sparsity in (0.5, 0.7):
        name = f"{sparsity:.0%} of weights as channels"
        model = fresh()
        try:
            graph = ChannelGraph(model, torch.zeros(1, *network.shape))
            scores = {g.name: torch.rand(g.size, generator=generator) for g in graph.groups}
            graph.prune(ranked_removal(graph, scores, sparsity, round_to=1))
        except (ValueError, RuntimeError) as error:  # the suite's channel pruning refuses it
            refused[name] = str(error).split(" (see docs")[0]
            continue
        models[name] = model
    return models, refused


def training_step(model: nn.Module, network: Network) -> Callable[[], None]:
    batch = {"image": torch.randn(network.train_batch, *network.shape)}
    with torch.no_grad():
        outputs = model.eval()(batch["image"])
    for task in network.tasks:
        out = outputs[task.name]
        batch[task.name] = (
            torch.randint(0, task.channels, (out.shape[0], *out.shape[2:]))
            if task.kind == "seg"
            else torch.randn_like(out)
        )
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    params = prunable_parameters(model)
    if any(bool((p == 0).any()) for p in params.values()):  # masked: zeros kept after each step
        masks = {n: p != 0 for n, p in params.items()}
        MaskSet(masks, owners_of(model, params)).attach(model, optimizer)

    def step() -> None:
        model.train()
        loss, _ = weighted_task_losses(model(batch["image"]), batch, network.tasks, {})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def peak_bytes(run: Callable[[], None], model: nn.Module) -> int:
    """Peak bytes of live tensors while ``run()`` executes, the model's state counted from the
    start (the tracker of ``benchmarks.inference.measure``, here over a training step: its
    activations and gradients)."""
    tracker = _LiveStorage(list(model.state_dict().values()))
    with tracker:
        run()
    return tracker.peak


def interleaved_steps(steps: dict[str, Callable[[], None]], rounds: int) -> dict[str, list[float]]:
    for step in steps.values():
        step()  # warm-up
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def measure(network: Network, plan: LatencyPlan, train_rounds: int) -> list[list[str]]:
    models, refused = variants(network)
    sizes = {name: storage_sizes(model) for name, model in models.items()}
    macs = {name: count_macs(model, network.shape) for name, model in models.items()}
    kept = {
        name: [(int((p != 0).sum()), p.numel()) for p in prunable_parameters(model).values()]
        for name, model in models.items()
    }
    latency = {}
    for batch in (1, 8):
        x = torch.randn(batch, *network.shape, generator=torch.Generator().manual_seed(batch))
        latency[batch] = interleaved_latency(models, x, plan)
    steps = {name: training_step(model, network) for name, model in models.items()}
    train = interleaved_steps(steps, train_rounds)
    memory = {name: peak_bytes(steps[name], model) for name, model in models.items()}
    rows = []
    for name in models:
        nonzero, stored = (sum(column) for column in zip(*kept[name], strict=True))
        lat = [median_ratio(latency[b][name], latency[b]["dense"]) for b in (1, 8)]
        rows.append(
            [
                name,
                f"{nonzero:,} nonzero of {stored:,} stored",
                f"{macs[name][0] / 1e9:.3f} ({macs[name][0] / macs['dense'][0]:.2f})",
                f"{sizes[name]['state_dict_bytes'] / MB:.1f} / "
                f"{sizes[name]['state_dict_gzip_bytes'] / MB:.1f}",
                f"{lat[0]:.2f} / {lat[1]:.2f}",
                f"{median_ratio(train[name], train['dense']):.2f}",
                f"{memory[name] / MB:.0f} MB ({memory[name] / memory['dense']:.2f})",
            ]
        )
    rows += [[name, f"refused: {reason}", "", "", "", "", ""] for name, reason in refused.items()]
    dense_ms = [statistics.median(latency[b]["dense"]) * 1e3 for b in (1, 8)]
    rows.append(
        [
            "(dense absolute)",
            "",
            "",
            "",
            f"{dense_ms[0]:.1f} / {dense_ms[1]:.1f} ms",
            f"{statistics.median(train['dense']) * 1e3:.0f} ms",
            "",
        ]
    )
    return rows
