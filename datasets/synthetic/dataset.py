"""The embedded dataset: rendered scenes with fixed train/val/test splits, cached on disk."""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.options import OptionError
from core.tasks import TASK_KINDS, TaskSpec, make_task
from datasets.registry import SPLITS, DatasetBundle, DatasetOptions, register_dataset
from datasets.synthetic.generate import RenderSettings, render_sample
from datasets.synthetic.scene import CLASS_NAMES
from datasets.tensor_dataset import MultiTaskTensorDataset

log = logging.getLogger(__name__)
CACHE_VERSION = 1


@dataclass(frozen=True)
class SyntheticOptions(DatasetOptions):
    tasks: tuple[str, ...] = field(
        default=("seg", "normal"),
        metadata={"help": "subset of seg, normal, depth, keypoint, edge"},
    )
    num_train: int = field(default=512, metadata={"help": "training scenes"})
    num_val: int = field(default=64, metadata={"help": "validation scenes"})
    num_test: int = field(default=128, metadata={"help": "test scenes"})
    height: int = field(default=48, metadata={"help": "image height in pixels"})
    width: int = field(default=64, metadata={"help": "image width in pixels"})
    min_objects: int = 3
    max_objects: int = 7
    noise_std: float = field(default=0.04, metadata={"help": "sensor noise (image in [0, 1])"})
    data_seed: int = field(default=0, metadata={"help": "scene seeds; independent of run seed"})
    cache_dir: str = field(
        default=".cache/synthetic",
        metadata={
            "help": "where rendered splits are kept (not part of a cell's identity)",
            "identity": False,
        },
    )


def _check(options: SyntheticOptions) -> None:
    unknown = [t for t in options.tasks if t not in TASK_KINDS]
    if unknown or not options.tasks:
        raise OptionError(
            f"dataset.tasks: unknown task(s) {unknown or '(none given)'}; "
            f"choose from {', '.join(TASK_KINDS)}"
        )
    for name in ("num_train", "num_val", "num_test", "height", "width"):
        if getattr(options, name) < 1:
            raise OptionError(f"dataset.{name} must be >= 1, got {getattr(options, name)}")
    if options.height < 16 or options.width < 16:
        raise OptionError("dataset.height and dataset.width must be >= 16 pixels")


def _split_seeds(options: SyntheticOptions) -> dict[str, range]:
    """Disjoint scene seeds per split; a split's scenes do not change when another grows."""
    base = options.data_seed * 10_000_000
    return {
        "train": range(base, base + options.capped(options.num_train)),
        "val": range(base + 5_000_000, base + 5_000_000 + options.capped(options.num_val)),
        "test": range(base + 6_000_000, base + 6_000_000 + options.capped(options.num_test)),
    }


def _render_split(seeds: range, settings: RenderSettings) -> dict[str, np.ndarray]:
    samples = [render_sample(seed, settings) for seed in seeds]
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


def _cache_path(options: SyntheticOptions, split: str, settings: RenderSettings) -> Path:
    seeds = _split_seeds(options)[split]
    key = json.dumps(
        {"v": CACHE_VERSION, "seeds": [seeds.start, seeds.stop], "render": asdict(settings)},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(options.cache_dir) / f"{split}-{len(seeds)}-{digest}.npz"


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached split, or None (with a warning) when the file is truncated or corrupt, so it
    is rendered again instead of failing every run."""
    try:
        with np.load(path) as cached:
            return {key: cached[key] for key in cached.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        log.warning(
            "cached split %s is unreadable (%s: %s); rendering it again",
            path,
            type(error).__name__,
            error,
        )
        return None


def _cache_mismatch(
    cached: dict[str, np.ndarray], seeds: range, settings: RenderSettings
) -> str | None:
    """What is wrong with a readable cached split: the arrays must have the keys, dtypes and
    shapes a fresh render has, and its first scene must equal a fresh render of that scene."""
    first = render_sample(seeds.start, settings)
    if set(cached) != set(first):
        return f"arrays {sorted(cached)}, expected {sorted(first)}"
    for key, value in first.items():
        expected_shape = (len(seeds), *np.shape(value))
        array = cached[key]
        if array.dtype != np.asarray(value).dtype or array.shape != expected_shape:
            return (
                f"{key} is {array.dtype} {array.shape}, expected "
                f"{np.asarray(value).dtype} {expected_shape}"
            )
        if not np.array_equal(array[0], value, equal_nan=True):
            return f"{key} of the first scene differs from a fresh render"
    return None


def load_split(options: SyntheticOptions, split: str) -> dict[str, np.ndarray]:
    """Render a split, or read it from the cache when the same scenes were rendered before."""
    settings = RenderSettings(
        height=options.height,
        width=options.width,
        min_objects=options.min_objects,
        max_objects=options.max_objects,
        noise_std=options.noise_std,
    )
    path = _cache_path(options, split, settings)
    seeds = _split_seeds(options)[split]
    if path.exists():
        cached = _read_cache(path)
        wrong = None if cached is None else _cache_mismatch(cached, seeds, settings)
        if cached is not None and wrong is None:
            return cached
        if wrong is not None:
            log.warning(
                "cached split %s does not match its scenes (%s); rendering it again", path, wrong
            )
    log.info(
        "rendering %d %s scenes at %dx%d -> %s",
        len(_split_seeds(options)[split]),
        split,
        options.height,
        options.width,
        path,
    )
    arrays = _render_split(_split_seeds(options)[split], settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    except OSError as error:
        log.warning("could not cache the synthetic split at %s (%s); continuing", path, error)
    return arrays


def synthetic_tasks(names: tuple[str, ...]) -> tuple[TaskSpec, ...]:
    return tuple(make_task(kind, num_classes=len(CLASS_NAMES)) for kind in names)


@register_dataset("synthetic", SyntheticOptions)
def build_synthetic(options: SyntheticOptions) -> DatasetBundle:
    _check(options)
    tasks = synthetic_tasks(options.tasks)
    splits = {}
    for split in SPLITS:
        arrays = load_split(options, split)
        fields = {"image": torch.from_numpy(arrays["image"])}
        for task in tasks:
            label = torch.from_numpy(arrays[task.kind])
            fields[task.name] = label.long() if task.kind == "seg" else label
        splits[split] = MultiTaskTensorDataset(fields)
    return DatasetBundle("synthetic", tasks, splits, (options.height, options.width))
