"""Data-loading throughput of the real NYUv2 loader (the shared samples, replicated into a
temporary folder in the AdaShare layout, read with the paper preset's crop and augmentation),
at several DataLoader worker counts, beside the training step's appetite (images/s), so a user
sees whether training would wait for data. ``python -m benchmarks.perf --loaders`` prints it."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmarks import PROJECT_ROOT
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
