"""NYUv2 (``dataset=nyuv2``): semantic segmentation, surface normals, depth.

Layouts (``layout: auto`` picks by what is on disk):

- ``adashare`` (AdaShare / DiSparse): ``img/NNNN.png`` RGB; ``seg/NNNN.png`` 40 classes, 255 =
  ignore; ``normal_mask/NNNN.png`` uint8 RGB, a pixel with any channel 255 is invalid, else
  v / 127.5 - 1; ``depth/NNNN.npy`` float32 metres, 0 = invalid. Splits from ``nyu_v2_3task.json``
  (``{"train": [[img, seg, normal, depth], ...], "test": [...]}``, paths relative to the root);
  without it they are built from the folders: sorted ids, the last ``holdout`` fraction held out.
  The paper evaluates on the test split, so val = test here.
- ``mtan`` (MTAN / LibMTL): ``{train,val}/{image,label,depth,normal}/{i}.npy``, 288x384, image
  float in [0, 1], label float with -1 = ignore (13 classes), depth HxWx1, unit normals with zero
  = invalid. test = val.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.tasks import make_task
from datasets.file_dataset import (
    FileDatasetOptions,
    SampleFiles,
    build_file_bundle,
    channels_first,
    depth_from_array,
    image_from_array,
    labels_from_array,
)
from datasets.files import DatasetError, numbered_ids, require_dir, resolve_layout
from datasets.registry import DatasetBundle, register_dataset

LAYOUTS = {  # name -> (marker that identifies it, description)
    "adashare": (
        "img",
        "img/, seg/, normal_mask/ (PNG) and depth/ (NPY) folders, optional nyu_v2_3task.json",
    ),
    "mtan": ("train", "train/ and val/ folders with image/, label/, depth/, normal/ NPY files"),
}
ADASHARE_FOLDERS = {
    "image": ("img", ".png"),
    "seg": ("seg", ".png"),
    "normal": ("normal_mask", ".png"),
    "depth": ("depth", ".npy"),
}
MTAN_FOLDERS = {"image": "image", "seg": "label", "normal": "normal", "depth": "depth"}


@dataclass(frozen=True)
class NYUv2Options(FileDatasetOptions):
    root: str | None = field(
        default=None,
        metadata={
            "help": "dataset folder (where, not what: not part of a cell's identity)",
            "identity": False,
        },
    )
    layout: str = field(default="auto", metadata={"help": "auto, adashare or mtan"})
    tasks: tuple[str, ...] = ("seg", "normal", "depth")
    num_classes: int = field(default=40, metadata={"help": "40 (adashare) or 13 (mtan layout)"})
    crop: tuple[int, ...] | None = field(default=None, metadata={"help": "train crop [h, w]"})
    holdout: float = field(default=0.2, metadata={"help": "held-out share without a json"})


def normals_from_png(array: np.ndarray) -> torch.Tensor:
    """Stored 0..255 per component as [-1, 1]; a pixel with any component 255 has none (0)."""
    normal = channels_first(array, "normal map")
    invalid = (normal == 255).any(dim=0)
    return normal.float().div_(127.5).sub_(1.0).masked_fill_(invalid, 0.0)


def normals_from_npy(array: np.ndarray) -> torch.Tensor:
    return channels_first(array, "normal map").float()


def _adashare_splits(root: Path, tasks, holdout: float) -> dict[str, list[SampleFiles]]:
    index = root / "nyu_v2_3task.json"
    fields = ["image", "seg", "normal", "depth"]
    if index.is_file():
        try:
            listing = json.loads(index.read_text())
            records = {
                split: [
                    dict(zip(fields, (p.lstrip("/") for p in row), strict=True))
                    for row in listing[split]
                ]
                for split in ("train", "test")
            }
        except (KeyError, ValueError, TypeError) as error:
            raise DatasetError(
                f"{index}: expected {{'train': [[img, seg, normal, depth], ...], "
                f"'test': [...]}} ({error})"
            ) from error
    else:
        ids = _complete_ids(root, fields)
        rows = [
            {f: f"{ADASHARE_FOLDERS[f][0]}/{i}{ADASHARE_FOLDERS[f][1]}" for f in fields}
            for i in ids
        ]
        cut = len(rows) - max(1, round(holdout * len(rows))) if len(rows) > 1 else len(rows)
        records = {"train": rows[:cut], "test": rows[cut:]}

    def samples(rows):
        return [
            SampleFiles(row["image"], {f: root / row[f] for f in ["image", *tasks]}) for row in rows
        ]

    train, test = samples(records["train"]), samples(records["test"])
    return {"train": train, "val": test, "test": test}


def _complete_ids(root: Path, fields: list[str]) -> list[str]:
    """Sample ids found in the folders of ``fields``; a sample missing from some folder is an
    error naming its files (dropping it would silently shift a split built from the folders)."""
    found = {
        field: {p.stem for p in (root / folder).glob(f"*{suffix}")}
        for field, (folder, suffix) in ADASHARE_FOLDERS.items()
        if field in fields
    }
    ids = sorted(set().union(*found.values()))
    missing = [
        f"{ADASHARE_FOLDERS[field][0]}/{i}{ADASHARE_FOLDERS[field][1]}"
        for i in ids
        for field, stems in found.items()
        if i not in stems
    ]
    if missing:
        listed = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise DatasetError(
            f"NYUv2 at {root}: {len(missing)} file(s) missing beside the other folders' files: "
            f"{listed}; restore them or remove the sample's other files"
        )
    return ids


def _mtan_splits(root: Path, tasks) -> dict[str, list[SampleFiles]]:
    splits = {}
    for split in ("train", "val"):
        images = root / split / MTAN_FOLDERS["image"]
        ids = numbered_ids(images)
        splits[split] = [
            SampleFiles(
                f"{split}/{i}",
                {f: root / split / MTAN_FOLDERS[f] / f"{i}.npy" for f in ["image", *tasks]},
            )
            for i in ids
        ]
    splits["test"] = splits["val"]
    return splits


@register_dataset("nyuv2", NYUv2Options)
def build_nyuv2(options: NYUv2Options) -> DatasetBundle:
    unknown = set(options.tasks) - {"seg", "normal", "depth"}
    if unknown or not options.tasks:
        raise DatasetError(
            f"dataset.tasks: NYUv2 has seg, normal, depth; got {list(options.tasks)}"
        )
    root = require_dir(options.root, "dataset.root", " or ".join(d for _, d in LAYOUTS.values()))
    layout = resolve_layout(root, options.layout, LAYOUTS, "NYUv2")
    if layout == "adashare" and options.num_classes != 40:
        raise DatasetError(
            "the adashare layout stores 40 classes; the 13-class variant needs "
            "the mtan layout (dataset.num_classes=13 dataset.layout=mtan)"
        )
    tasks = tuple(make_task(k, num_classes=options.num_classes) for k in options.tasks)
    decoders = {
        "image": image_from_array,
        "depth": depth_from_array,
        "seg": lambda a: labels_from_array(a, options.num_classes),
        "normal": normals_from_png if layout == "adashare" else normals_from_npy,
    }
    if layout == "adashare":
        splits = _adashare_splits(root, options.tasks, options.holdout)
    else:
        splits = _mtan_splits(root, options.tasks)
    decoders = {k: v for k, v in decoders.items() if k == "image" or k in options.tasks}
    return build_file_bundle(
        "nyuv2",
        tasks,
        splits,
        decoders,
        options.crop,
        f"NYUv2 ({layout} layout) at {root}",
        limit=options.limit,
        array_cache=options.array_cache,
    )
