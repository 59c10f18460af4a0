"""Tiny-Taskonomy (``dataset=taskonomy``): seg, normal, depth, keypoint and edge.

Layouts (found automatically): ``<root>/<building>/<domain>/point_{p}_view_{v}_domain_{domain}.png``
as released, or ``<root>/<domain>/taskonomy/<building>/...`` as the DiSparse authors remap it,
with the domains ``rgb``, ``segmentsemantic``, ``normal``, ``depth_zbuffer``, ``keypoints2d``,
``edge_texture``. Buildings are assigned to splits by the official ``train_val_test_tiny.csv``
(columns ``id,train,val,test``; the file uses old Mac CR line endings, read either way). Buildings
of a split missing on disk are reported (count and names); a point whose file of some needed
domain is missing is skipped and reported, not crashed on.

Decoding, ``conventions: suite`` (AdaShare's, our default):
- seg: stored ids 1..17 are classes 0..16, 0 is unlabelled (ignored); the class-balancing
  weights ``semseg_prior_factor.npy`` (17 values) weight the cross-entropy when given.
- normal: v / 127.5 - 1 (all pixels valid).
- depth: 16-bit z-buffer in 1/512 m; values >= 64500 are invalid (0 here); valid values are
  log-scaled as AdaShare: log(1 + v) / log(2^16) (``depth_scale: metres`` gives v / 512 instead).
- keypoint, edge: 16-bit (or 8-bit) maps divided by their dtype's maximum, so in [0, 1].

``conventions: authors`` (the DiSparse code, for the paper preset): stored seg 0 is class 0 like
stored 1 (their unlabelled mask is built but never used); keypoint and edge values / 2^16 are
clipped to [0, 0.005] and [0, 0.08] and scaled to [-1, 1]. ``resize: [256, 256]`` resizes every
domain (nearest) before augmentation and evaluation, as they do.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.options import check_choice
from core.tasks import make_task
from datasets.file_dataset import (
    FileDatasetOptions,
    SampleFiles,
    build_file_bundle,
    channels_first,
    image_from_array,
)
from datasets.files import DatasetError, read_npy, require_dir
from datasets.registry import DatasetBundle, register_dataset

log = logging.getLogger(__name__)
DOMAINS = {
    "image": "rgb",
    "seg": "segmentsemantic",
    "normal": "normal",
    "depth": "depth_zbuffer",
    "keypoint": "keypoints2d",
    "edge": "edge_texture",
}
LAYOUT = "<building>/<domain>/point_{p}_view_{v}_domain_{domain}.png folders"
DEPTH_INVALID = 64500
NUM_CLASSES = 17
CONVENTIONS = ("suite", "authors")
AUTHORS_MAP_RANGE = {"keypoint": 0.005, "edge": 0.08}  # of the 16-bit range, then to [-1, 1]


@dataclass(frozen=True)
class TaskonomyOptions(FileDatasetOptions):
    root: str | None = field(
        default=None,
        metadata={
            "help": "dataset folder (where, not what: not part of a cell's identity)",
            "identity": False,
        },
    )
    tasks: tuple[str, ...] = ("seg", "normal", "depth", "keypoint", "edge")
    split_file: str | None = field(
        default=None,
        metadata={"help": "train_val_test_tiny.csv; null: <root>/train_val_test_tiny.csv"},
    )
    class_prior_file: str | None = field(
        default=None, metadata={"help": "semseg_prior_factor.npy; null: <root>/... if present"}
    )
    depth_scale: str = field(default="log", metadata={"help": "log (AdaShare) or metres"})
    crop: tuple[int, ...] | None = field(default=None, metadata={"help": "train crop [h, w]"})
    conventions: str = field(
        default="suite",
        metadata={"help": "label decoding: suite (seg 0 ignored, maps in [0, 1]) or authors"},
    )
    resize: tuple[int, ...] | None = field(
        default=None, metadata={"help": "[h, w] every domain is resized to (nearest); null: none"}
    )


def read_split_file(path: Path) -> dict[str, list[str]]:
    """Buildings per split from the official CSV (CR, LF or CRLF line endings)."""
    if not path.is_file():
        raise DatasetError(
            f"missing split file {path} (the official train_val_test_tiny.csv); "
            "set dataset.split_file"
        )
    text = path.read_text().replace("\r\n", "\n").replace("\r", "\n")
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or not {"id", "train", "val", "test"} <= set(rows[0]):
        raise DatasetError(f"{path}: expected columns id,train,val,test")
    return {
        split: [r["id"] for r in rows if r[split].strip() == "1"]
        for split in ("train", "val", "test")
    }


def domain_folder(root: Path, building: str, domain: str) -> Path:
    """Where a building's files of one domain are: the released layout or the authors' remap."""
    remapped = root / domain / "taskonomy" / building
    return (
        remapped if (root / DOMAINS["image"] / "taskonomy").is_dir() else root / building / domain
    )


def _point_samples(root: Path, buildings: list[str], tasks) -> tuple[list[SampleFiles], int]:
    samples, missing = [], 0
    for building in buildings:
        rgb_dir = domain_folder(root, building, DOMAINS["image"])
        for rgb in sorted(rgb_dir.glob("point_*_domain_rgb.png")):
            stem = rgb.name[: -len("rgb.png")]
            paths = {"image": rgb}
            paths.update(
                {
                    t: domain_folder(root, building, DOMAINS[t]) / f"{stem}{DOMAINS[t]}.png"
                    for t in tasks
                }
            )
            absent = [p for p in paths.values() if not p.is_file()]
            if absent:
                missing += 1
                if missing <= 5:
                    log.warning(
                        "taskonomy: skipping %s: missing %s", rgb, ", ".join(map(str, absent))
                    )
                continue
            samples.append(SampleFiles(f"{building}/{stem}", paths))
    return samples, missing


def seg_decoder(conventions: str):
    """Stored 0 is unlabelled (suite) or class 0 like stored 1 (the authors' code)."""

    def decode(array: np.ndarray) -> torch.Tensor:
        stored = seg_from_png(array)
        unlabelled = 255 if conventions == "suite" else 0
        return torch.where(stored == 0, torch.full_like(stored, unlabelled), stored - 1)

    return decode


def seg_from_png(array: np.ndarray) -> torch.Tensor:
    """Stored segmentation ids (0..17) as int64, checked."""
    stored = torch.from_numpy(np.ascontiguousarray(np.squeeze(array)).astype(np.int64))
    if stored.dim() != 2:
        raise DatasetError(
            f"expected a single-channel segmentation, got shape {tuple(array.shape)}"
        )
    if int(stored.max()) > NUM_CLASSES or int(stored.min()) < 0:
        raise DatasetError(
            f"segmentation values must be 0 (unlabelled) to {NUM_CLASSES}, found "
            f"{int(stored.min())}..{int(stored.max())}"
        )
    return stored


def normal_from_png(array: np.ndarray) -> torch.Tensor:
    return channels_first(array, "normal map").float() / 127.5 - 1


def depth_decoder(scale: str):
    def decode(array: np.ndarray) -> torch.Tensor:
        raw = torch.from_numpy(np.squeeze(array).astype(np.float32))
        valid = raw < DEPTH_INVALID
        value = torch.log1p(raw) / np.log(2.0**16) if scale == "log" else raw / 512.0
        return torch.where(valid, value, torch.zeros_like(value))[None]

    return decode


def unit_map_from_png(array: np.ndarray) -> torch.Tensor:
    maximum = np.iinfo(array.dtype).max if np.issubdtype(array.dtype, np.integer) else 1.0
    return torch.from_numpy(np.squeeze(array).astype(np.float32) / maximum)[None]


def clipped_map_decoder(upper: float):
    """The authors' keypoint/edge decoding: v / 2^16 clipped to [0, upper], scaled to [-1, 1]."""

    def decode(array: np.ndarray) -> torch.Tensor:
        value = torch.from_numpy(np.squeeze(array).astype(np.float32) / 2.0**16)
        return (value.clamp(0.0, upper) / upper * 2.0 - 1.0)[None]

    return decode


def resized(decode, size: tuple[int, int]):
    """``decode`` followed by a nearest-neighbour resize to ``size`` (labels stay labels)."""

    def decode_and_resize(array: np.ndarray) -> torch.Tensor:
        value = decode(array)
        planar = value if value.dim() == 3 else value[None]
        out = F.interpolate(planar[None].float(), size=size, mode="nearest")[0].to(value.dtype)
        return out if value.dim() == 3 else out[0]

    return decode_and_resize


@register_dataset("taskonomy", TaskonomyOptions)
def build_taskonomy(options: TaskonomyOptions) -> DatasetBundle:
    if set(options.tasks) - set(DOMAINS) or not options.tasks:
        raise DatasetError(
            f"dataset.tasks: Taskonomy has seg, normal, depth, keypoint, edge; "
            f"got {list(options.tasks)}"
        )
    check_choice("dataset.conventions", options.conventions, CONVENTIONS)
    check_choice("dataset.depth_scale", options.depth_scale, ("log", "metres"))
    if options.resize is not None and (len(options.resize) != 2 or min(options.resize) < 1):
        raise DatasetError(f"dataset.resize must be [height, width] or null, got {options.resize}")
    root = require_dir(options.root, "dataset.root", LAYOUT)
    split_file = (
        Path(options.split_file) if options.split_file else root / "train_val_test_tiny.csv"
    )
    buildings = read_split_file(split_file)
    prior_path = (
        Path(options.class_prior_file)
        if options.class_prior_file
        else root / "semseg_prior_factor.npy"
    )
    weights = None
    if options.class_prior_file or prior_path.is_file():
        weights = tuple(float(w) for w in read_npy(prior_path).ravel())
        if len(weights) != NUM_CLASSES:
            raise DatasetError(
                f"{prior_path}: expected {NUM_CLASSES} class weights, got {len(weights)}"
            )
    tasks = tuple(
        make_task(k, num_classes=NUM_CLASSES, class_weights=weights if k == "seg" else None)
        for k in options.tasks
    )
    splits = {}
    for split, names in buildings.items():
        present = [b for b in names if domain_folder(root, b, DOMAINS["image"]).is_dir()]
        absent = [b for b in names if b not in present]
        if absent:
            log.warning(
                "taskonomy/%s: %d of the split's %d buildings are not on disk: %s%s",
                split,
                len(absent),
                len(names),
                ", ".join(absent[:10]),
                " ..." if len(absent) > 10 else "",
            )
        splits[split], missing = _point_samples(root, present, options.tasks)
        if missing:
            log.warning("taskonomy/%s: %d points skipped for missing domain files", split, missing)
    authors = options.conventions == "authors"
    decoders = {
        "image": image_from_array,
        "seg": seg_decoder(options.conventions),
        "normal": normal_from_png,
        "depth": depth_decoder(options.depth_scale),
        **{
            kind: clipped_map_decoder(AUTHORS_MAP_RANGE[kind]) if authors else unit_map_from_png
            for kind in ("keypoint", "edge")
        },
    }
    decoders = {k: v for k, v in decoders.items() if k == "image" or k in options.tasks}
    if options.resize is not None:
        size = (int(options.resize[0]), int(options.resize[1]))
        decoders = {k: resized(v, size) for k, v in decoders.items()}
    return build_file_bundle(
        "taskonomy",
        tasks,
        splits,
        decoders,
        options.crop,
        f"Taskonomy at {root} (splits from {split_file})",
        limit=options.limit,
        array_cache=options.array_cache,
        pixelwise=options.resize is None,  # resized decoders change each field's size
    )
