"""Data loading of the real NYUv2 loader (the shared samples, replicated into a temporary folder
in the AdaShare layout, read with the paper preset's crop and augmentation): its throughput at
several DataLoader worker counts beside the training step's appetite (``python -m
benchmarks.perf --loaders``), and its CPU milliseconds per training and evaluation image for
today's path and the array cache, with the loader cores an H200 would need (``--loader``)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks import PROJECT_ROOT
from benchmarks.sweep.estimate import cpu_ms_per_image
from benchmarks.training.stream import BatchStream
from datasets.registry import build_dataset

SAMPLE_FOLDERS = ("img", "seg", "normal_mask", "depth")
DEFAULT_SAMPLES = PROJECT_ROOT.parent / "shared" / "data" / "nyuv2_adashare_samples"


def replicate_nyuv2(samples: Path, root: Path, copies: int) -> int:
    """Link every sample of ``samples`` ``copies`` times under new ids into ``root``; returns
    the number of samples written."""
    ids = sorted(p.stem for p in (samples / "img").glob("*.png"))
    if not ids:
        raise FileNotFoundError(f"no NYUv2 samples (img/*.png) under {samples}")
    count = 0
    for copy in range(copies):
        for sample in ids:
            new_id = f"{copy:03d}{sample}"
            for folder in SAMPLE_FOLDERS:
                source = next((samples / folder).glob(f"{sample}.*"))
                target = root / folder / f"{new_id}{source.suffix}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source.resolve())
            count += 1
    return count


def images_per_second(split, batch_size: int, workers: int, batches: int) -> float:
    """Training batches read (and augmented) per second, after the first batch (start-up)."""
    stream = BatchStream(
        split, batch_size, torch.Generator().manual_seed(0), torch.device("cpu"), workers
    )
    next(stream)
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return batches * batch_size / (time.perf_counter() - start)


def nyuv2_throughput(
    samples: Path, worker_counts: list[int], batch_size: int = 8, batches: int = 20
) -> dict[int, float]:
    """{workers: images/s} of the NYUv2 loader with the paper preset's 321x321 crop."""
    with tempfile.TemporaryDirectory() as tmp:
        replicate_nyuv2(samples, Path(tmp), copies=16)
        options = {"root": tmp, "tasks": ["seg", "normal"], "crop": [321, 321], "holdout": 0.1}
        split = build_dataset("nyuv2", options).splits["train"]
        return {w: images_per_second(split, batch_size, w, batches) for w in worker_counts}


# NVIDIA's dense peak figures for H100/H200 SXM (TFLOPS), and the share of peak a well-fed
# training step of a convolutional network reaches (the range the estimate used).
H200_PEAK_TFLOPS = {"tf32": 494.7, "bf16": 989.4}
UTILISATION = (0.30, 0.40)
PAPER_CROP = (321, 321)


@dataclass(frozen=True)
class LoaderCost:
    """CPU milliseconds per image of one data path: a training image (decoded, converted,
    augmented to the crop) and an evaluation image (decoded and converted, full size)."""

    name: str
    train_ms: float
    eval_ms: float


def nyuv2_loader_costs(samples: Path, count: int = 32) -> list[LoaderCost]:
    """Today's path (PNG files read every time) and the array cache, on the real NYUv2 samples
    at their 480x640 with the paper preset's crop and augmentation."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    costs = []
    with tempfile.TemporaryDirectory() as tmp:
        replicate_nyuv2(samples, Path(tmp) / "data", copies=4)
        for name, cache in (("files", None), ("array cache", f"{tmp}/arrays")):
            options = {
                "root": f"{tmp}/data",
                "tasks": ["seg", "normal"],
                "crop": list(PAPER_CROP),
                "holdout": 0.25,
                "array_cache": cache,
            }
            splits = build_dataset("nyuv2", options).splits
            train = cpu_ms_per_image(splits["train"], count)
            costs.append(LoaderCost(name, train, cpu_ms_per_image(splits["test"], count)))
    torch.set_num_threads(threads)
    return costs


def training_gflop_per_image(crop: tuple[int, int] = PAPER_CROP) -> float:
    """FLOPs of one training image of the paper network (3 x 2 x its MACs), in GFLOP."""
    from core.tasks import make_task
    from methods.networks import model_parts
    from methods.networks.complexity import count_macs

    tasks = (make_task("seg", num_classes=40), make_task("normal"))
    parts = model_parts("deeplab_resnet34", {"head": "aspp_fc", "init": "authors"})
    macs, _ = count_macs(parts.hard_sharing(tasks).eval(), (3, *crop))
    return 3 * 2 * macs / 1e9


def gpu_appetite(gflop_per_image: float) -> dict[str, tuple[float, float]]:
    """Images/s an H200 trains at ``UTILISATION`` of its peak, per precision."""
    return {
        precision: tuple(u * peak * 1e3 / gflop_per_image for u in UTILISATION)
        for precision, peak in H200_PEAK_TFLOPS.items()
    }
