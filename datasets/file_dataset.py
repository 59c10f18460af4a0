"""A multitask split backed by files: one record of paths per sample, one decoder per field."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.array_cache import ArrayCache
from datasets.files import DatasetError, read_array
from datasets.registry import DatasetBundle, DatasetOptions
from datasets.transforms import JointTrainTransform

# Turns the raw array of a file into the field's tensor (image [3,H,W] float, labels per task).
Decoder = Callable[[np.ndarray], torch.Tensor]


@dataclass(frozen=True)
class SampleFiles:
    key: str
    paths: dict[str, Path]  # "image" and one entry per task name


@dataclass(frozen=True)
class FileDatasetOptions(DatasetOptions):
    """Options every dataset read from files takes."""

    array_cache: str | None = field(
        default=".cache/arrays",
        metadata={
            "help": "folder of the memory-mapped arrays decoded once from the files (same "
            "tensors, no PNG decoding each epoch); null: read the files every time (not part "
            "of a cell's identity)",
            "identity": False,
        },
    )


class FileMultiTaskDataset(Dataset):
    def __init__(
        self,
        samples: Sequence[SampleFiles],
        decoders: dict[str, Decoder],
        transform: JointTrainTransform | None = None,
        arrays: ArrayCache | None = None,
        pixelwise: bool = True,
    ):
        """``pixelwise``: each decoder maps a pixel of its array to the same pixel of its
        tensor (no resizing), so the transform may decode only the pixels its crop reads."""
        self.samples = list(samples)
        self.decoders = decoders
        self.transform = transform
        self.arrays = arrays
        self.pixelwise = pixelwise

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        cropping = self.transform is not None and self.pixelwise
        arrays = {
            name: self._array(name, index, sample.paths[name], copy=not cropping)
            for name in self.decoders
        }
        if cropping:
            squeezed = {name: np.squeeze(a) for name, a in arrays.items()}
            size = squeezed["image"].shape[:2]
            if all(a.ndim in (2, 3) and a.shape[:2] == size for a in squeezed.values()):
                decoders = {
                    name: functools.partial(self._decode, name, sample.paths[name])
                    for name in squeezed
                }
                return self.transform.from_raw(squeezed, decoders)
        fields = {
            name: self._decode(name, sample.paths[name], _writable(array))
            for name, array in arrays.items()
        }
        size = fields["image"].shape[-2:]
        for name, value in fields.items():
            if value.shape[-2:] != size:
                raise DatasetError(
                    f"sample {sample.key}: {sample.paths[name]} is {tuple(value.shape[-2:])} "
                    f"but its image {sample.paths['image']} is {tuple(size)}"
                )
        return self.transform(fields) if self.transform else fields

    def _array(self, name: str, index: int, path: Path, copy: bool) -> np.ndarray:
        cached = self.arrays.read(name, index, copy) if self.arrays is not None else None
        return read_array(path) if cached is None else cached

    def _decode(self, name: str, path: Path, array: np.ndarray) -> torch.Tensor:
        """The field's tensor; a decoder's error names the file."""
        try:
            return self.decoders[name](array)
        except (ValueError, IndexError, RuntimeError, TypeError) as error:
            if isinstance(error, DatasetError) and str(path) in str(error):
                raise
            raise DatasetError(f"cannot decode {path} as {name}: {error}") from error

    def resolution(self) -> tuple[int, int]:
        """Image size of the first sample (read from disk)."""
        image = self.decoders["image"](read_array(self.samples[0].paths["image"]))
        return int(image.shape[-2]), int(image.shape[-1])


def _writable(array: np.ndarray) -> np.ndarray:
    """A copy of a read-only cache map (decoders hand their arrays to torch)."""
    return array if array.flags.writeable else np.array(array)


def channels_first(array: np.ndarray, what: str) -> torch.Tensor:
    """The first three channels of an HxWxC array (C >= 3, real numbers) as [3, H, W]."""
    if array.ndim != 3 or array.shape[-1] < 3:
        raise DatasetError(f"expected an HxWx3 {what}, got shape {array.shape}")
    _require_real(array, what)
    return torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1)


def _require_real(array: np.ndarray, what: str) -> None:
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DatasetError(f"expected a real-valued {what}, got dtype {array.dtype}")


def image_from_array(array: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 (or float in [0, 1]) -> float [3, H, W] in [0, 1]."""
    image = channels_first(array, "image")
    if image.dtype == torch.uint8:
        return image.float() / 255.0
    image = image.float()
    return image / 255.0 if image.max() > 1.5 else image


def labels_from_array(array: np.ndarray, num_classes: int, ignore: int = 255) -> torch.Tensor:
    """Class ids [H, W] int64; negative ids and ``ignore`` become ``ignore``; others checked."""
    labels = torch.from_numpy(np.ascontiguousarray(np.squeeze(array)).astype(np.int64))
    labels.masked_fill_(labels < 0, ignore)
    largest = int(labels.masked_fill(labels == ignore, -1).max()) if labels.numel() else -1
    if largest >= num_classes:
        raise DatasetError(f"label {largest} is out of range for {num_classes} classes")
    return labels


def map_from_array(array: np.ndarray) -> torch.Tensor:
    """HxW or HxWx1 real-valued map -> float [1, H, W]."""
    _require_real(array, "map")
    squeezed = np.squeeze(array)
    if squeezed.ndim != 2:
        raise DatasetError(f"expected an HxW map, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(squeezed).astype(np.float32))[None]


MAX_DEPTH_M = 1000.0  # no scene here is deeper; millimetre files reach thousands


def depth_from_array(array: np.ndarray) -> torch.Tensor:
    """Depth in metres, stored as floats: integer files are usually millimetres or 16-bit codes,
    and float files with values in the thousands are millimetres too; either would train on
    values a thousand times too large."""
    if not np.issubdtype(array.dtype, np.floating):
        raise DatasetError(
            f"expected depth in metres as floats, got dtype {array.dtype}; if the values are "
            "millimetres, convert the files with depth / 1000 to float32"
        )
    deepest = float(np.nanmax(array)) if array.size else 0.0
    if deepest > MAX_DEPTH_M:
        raise DatasetError(
            f"expected depth in metres, but the deepest value is {deepest:g} (> {MAX_DEPTH_M:g}): "
            "millimetres? convert the files with depth / 1000"
        )
    return map_from_array(array)


def check_files(where: str, splits: dict[str, list[SampleFiles]]) -> None:
    """Every file the splits need exists: otherwise one error naming every missing folder, and
    for folders that exist the number of missing files with the first few (found when the
    dataset is built, not as a failed run during training)."""
    missing: dict[Path, list[Path]] = {}
    for samples in splits.values():
        for sample in samples:
            for path in sample.paths.values():
                if not path.is_file():
                    missing.setdefault(path.parent, []).append(path)
    if not missing:
        return
    lines = []
    for folder, paths in sorted(missing.items()):
        if not folder.is_dir():
            lines.append(f"folder {folder} is missing")
        else:
            names = ", ".join(sorted({p.name for p in paths})[:3])
            lines.append(f"{len(set(paths))} file(s) missing in {folder} (e.g. {names})")
    raise DatasetError(
        f"{where}: " + "; ".join(lines) + ". Point dataset.root at a complete copy, or restore "
        "the files (each loader's layouts: its module docstring, and docs/real-data.md)"
    )


def _arrays(folder: str | None, samples: list[SampleFiles], fields: list[str]):
    """The split's array cache, built or refreshed now (None: no cache)."""
    if folder is None:
        return None
    return ArrayCache(Path(folder), {f: [s.paths[f] for s in samples] for f in fields}).prepare()


def build_file_bundle(
    name: str,
    tasks: tuple,
    splits: dict[str, list[SampleFiles]],
    decoders: dict[str, Decoder],
    crop: Sequence[int] | None,
    where: str,
    limit: int | None = None,
    array_cache: str | None = None,
    pixelwise: bool = True,
):
    """The DatasetBundle of a file dataset: augmentation on train (when ``crop`` is set),
    full resolution on val/test, at most ``limit`` samples per split, raw arrays kept under
    ``array_cache`` (``datasets.array_cache``); an empty split is an error naming ``where``.
    ``pixelwise``: see ``FileMultiTaskDataset``."""
    for split, samples in splits.items():
        if not samples:
            raise DatasetError(f"{where}: the {split} split has no samples")
    splits = {split: samples[:limit] for split, samples in splits.items()}
    check_files(where, splits)
    train_transform, train_crop = None, None
    if crop is not None:
        if len(crop) != 2 or min(crop) < 1:
            raise DatasetError(f"dataset.crop must be [height, width], got {list(crop)}")
        train_crop = (int(crop[0]), int(crop[1]))
        train_transform = JointTrainTransform(tasks, train_crop)
    datasets = {
        split: FileMultiTaskDataset(
            samples,
            decoders,
            train_transform if split == "train" else None,
            _arrays(array_cache, samples, list(decoders)),
            pixelwise,
        )
        for split, samples in splits.items()
    }
    return DatasetBundle(name, tasks, datasets, datasets["test"].resolution(), train_crop)
