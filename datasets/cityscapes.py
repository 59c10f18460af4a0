"""Cityscapes (``dataset=cityscapes``): semantic segmentation (19 classes, or the 7-class
variant) and depth.

Layouts (``layout: auto`` picks by what is on disk):

- ``mtan`` (MTAN / LibMTL): ``{train,val}/{image,label_7,label_19,depth}/{i}.npy``; LibMTL names
  the 7-class labels ``label/``. Image HxWx3 float in [0, 1]; labels with -1 = ignore.
- ``adashare``: ``cityscape.json`` = ``{"train": [row, ...], "test": [...]}`` listing NPY paths
  relative to the root. Rows as AdaShare and the DiSparse authors write them,
  ``[image, depth, label2, label7, label19]`` (the labels of ``num_classes`` are read), or
  ``[image, seg, depth]`` (19 classes). -1 or 255 = ignore. Their images are 256x512.

Depth is used as stored: in both preprocessed releases it is inverse depth (disparity) scaled by
the release, with 0 marking pixels without a measurement. Depth metrics are therefore in the
release's units, as in the papers that use them. test = val (the papers evaluate on val).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.tasks import make_task
from datasets.file_dataset import (
    FileDatasetOptions,
    SampleFiles,
    build_file_bundle,
    depth_from_array,
    image_from_array,
    labels_from_array,
)
from datasets.files import DatasetError, numbered_ids, require_dir, resolve_layout
from datasets.registry import DatasetBundle, register_dataset

LAYOUTS = {  # name -> (marker that identifies it, description)
    "adashare": (
        "cityscape.json",
        "cityscape.json listing [image, seg, depth] NPY paths per split",
    ),
    "mtan": (
        "train",
        "train/ and val/ folders with image/, label_7/ or label/, label_19/, depth/ NPY files",
    ),
}


@dataclass(frozen=True)
class CityscapesOptions(FileDatasetOptions):
    root: str | None = field(
        default=None,
        metadata={
            "help": "dataset folder (where, not what: not part of a cell's identity)",
            "identity": False,
        },
    )
    layout: str = field(default="auto", metadata={"help": "auto, mtan or adashare"})
    tasks: tuple[str, ...] = ("seg", "depth")
    num_classes: int = field(
        default=19, metadata={"help": "19, or 7 (mtan layout, or adashare json with 5-path rows)"}
    )
    crop: tuple[int, ...] | None = field(default=None, metadata={"help": "train crop [h, w]"})


def _mtan_label_folder(split_dir: Path, num_classes: int) -> str:
    candidates = ["label_19"] if num_classes == 19 else ["label_7", "label"]
    for name in candidates:
        if (split_dir / name).is_dir():
            return name
    raise DatasetError(
        f"{split_dir}: no {' or '.join(candidates)} folder for {num_classes} classes"
    )


def _mtan_splits(root: Path, tasks, num_classes: int) -> dict[str, list[SampleFiles]]:
    splits = {}
    for split in ("train", "val"):
        folder = root / split
        names = {"image": "image", "depth": "depth"}
        if "seg" in tasks:
            names["seg"] = _mtan_label_folder(folder, num_classes)
        ids = numbered_ids(folder / "image")
        splits[split] = [
            SampleFiles(
                f"{split}/{i}", {f: folder / names[f] / f"{i}.npy" for f in ["image", *tasks]}
            )
            for i in ids
        ]
    splits["test"] = splits["val"]
    return splits


ADASHARE_LABELS = {2: "label2", 7: "label7", 19: "label19"}


def _adashare_row(row: list[str], num_classes: int) -> dict[str, str]:
    """Paths of one cityscape.json row: ``[image, depth, label2, label7, label19]`` (AdaShare,
    the DiSparse authors) or ``[image, seg, depth]``."""
    paths = [p.lstrip("/") for p in row]
    if len(paths) == 5:
        named = dict(zip(["image", "depth", "label2", "label7", "label19"], paths, strict=True))
        return {
            "image": named["image"],
            "depth": named["depth"],
            "seg": named[ADASHARE_LABELS[num_classes]],
        }
    if len(paths) == 3:
        if num_classes != 19:
            raise ValueError("[image, seg, depth] rows hold 19-class labels")
        return dict(zip(["image", "seg", "depth"], paths, strict=True))
    raise ValueError(f"a row has {len(paths)} paths")


def _adashare_splits(root: Path, tasks, num_classes: int) -> dict[str, list[SampleFiles]]:
    index = root / "cityscape.json"
    try:
        listing = json.loads(index.read_text())
        rows = {
            split: [_adashare_row(row, num_classes) for row in listing[split]]
            for split in ("train", "test")
        }
    except (KeyError, ValueError, TypeError) as error:
        raise DatasetError(
            f"{index}: expected {{'train': [row, ...], 'test': [...]}} with rows "
            f"[image, depth, label2, label7, label19] or [image, seg, depth] ({error})"
        ) from error
    splits = {
        split: [
            SampleFiles(r["image"], {f: root / r[f] for f in ["image", *tasks]}) for r in records
        ]
        for split, records in rows.items()
    }
    return {"train": splits["train"], "val": splits["test"], "test": splits["test"]}


def disparity_from_array(array: np.ndarray):
    depth = depth_from_array(array)
    depth[~(depth > 0)] = 0.0  # negative, NaN: no measurement
    return depth


@register_dataset("cityscapes", CityscapesOptions)
def build_cityscapes(options: CityscapesOptions) -> DatasetBundle:
    if set(options.tasks) - {"seg", "depth"} or not options.tasks:
        raise DatasetError(
            f"dataset.tasks: Cityscapes has seg and depth; got {list(options.tasks)}"
        )
    if options.num_classes not in (7, 19):
        raise DatasetError(f"dataset.num_classes must be 19 or 7, got {options.num_classes}")
    root = require_dir(options.root, "dataset.root", " or ".join(d for _, d in LAYOUTS.values()))
    layout = resolve_layout(root, options.layout, LAYOUTS, "Cityscapes")
    tasks = tuple(make_task(k, num_classes=options.num_classes) for k in options.tasks)
    decoders = {
        "image": image_from_array,
        "depth": disparity_from_array,
        "seg": lambda a: labels_from_array(a, options.num_classes),
    }
    decoders = {k: v for k, v in decoders.items() if k == "image" or k in options.tasks}
    if layout == "mtan":
        splits = _mtan_splits(root, options.tasks, options.num_classes)
    else:
        splits = _adashare_splits(root, options.tasks, options.num_classes)
    return build_file_bundle(
        "cityscapes",
        tasks,
        splits,
        decoders,
        options.crop,
        f"Cityscapes ({layout} layout) at {root}",
        limit=options.limit,
        array_cache=options.array_cache,
    )
