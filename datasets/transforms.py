"""Joint training augmentation for image and labels (the DiSparse/AdaShare protocol): random
scale in [0.5, 1.5], horizontal flip (negating the normals' x component) and a random crop, padded
with each field's "no label" value where the scaled image is smaller than the crop.

The result is that of resizing each whole field (``F.interpolate``, nearest for labels, bilinear
without antialiasing for the image and continuous maps), flipping, padding and cropping, but only
the cropped pixels are computed: each output pixel's source pixels come from the same index
formulas as PyTorch's CPU kernels (nearest: ``floor(dst * in / out)``; bilinear:
``(dst + 0.5) * in / out - 0.5`` clamped at 0, in float32). From raw file arrays
(``from_raw``) only the pixels the crop reads are decoded: the nearest fields' picked pixels and
the bilinear fields' window (decoders act pixel by pixel). On NYUv2 this took a training image
from 19 to about 5 ms of CPU (``python -m benchmarks.perf --loader``).

Randomness comes from torch's global generator, which the runner seeds per cell (the same draws,
in the same order, as resizing whole fields took). Evaluation uses no transform (full size)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from core.tasks import TaskSpec

# Continuous maps are resampled bilinearly; labels whose "invalid" value must not blend with
# valid ones (classes, normals and depth with 0 = invalid) are resampled by nearest neighbour.
BILINEAR_KINDS = ("keypoint", "edge")
Decoder = Callable[[np.ndarray], torch.Tensor]


def pad_value(task: TaskSpec) -> float:
    return float(task.ignore_value) if task.ignore_value is not None else 0.0


@dataclass(frozen=True)
class Linear:
    """Bilinear sampling along one axis: output i blends source ``low[i]`` and ``high[i]``."""

    low: torch.Tensor
    high: torch.Tensor
    low_weight: torch.Tensor
    high_weight: torch.Tensor


def nearest_sources(scaled: torch.Tensor, in_size: int, out_size: int) -> torch.Tensor:
    """Source index of each position ``scaled`` of an axis resized from ``in_size`` to
    ``out_size`` (PyTorch's ``nearest``: ``floor(dst * (in / out))`` in float32)."""
    if in_size == out_size:
        return scaled
    ratio = torch.tensor(in_size, dtype=torch.float32) / out_size
    return (scaled.float() * ratio).floor().long().clamp(max=in_size - 1)


def linear_sources(scaled: torch.Tensor, in_size: int, out_size: int) -> Linear:
    """The two source indices and weights of each position ``scaled`` (PyTorch's bilinear
    with ``align_corners=False``)."""
    if in_size == out_size:
        return Linear(scaled, scaled, torch.ones(len(scaled)), torch.zeros(len(scaled)))
    ratio = torch.tensor(in_size, dtype=torch.float32) / out_size
    real = ((scaled.float() + 0.5) * ratio - 0.5).clamp(min=0.0)
    low = real.floor().long().clamp(max=in_size - 1)
    high_weight = (real - low.float()).clamp(0.0, 1.0)
    high = low + (low < in_size - 1).long()
    return Linear(low, high, 1.0 - high_weight, high_weight)


@dataclass(frozen=True)
class CropPlan:
    """One draw of the augmentation for a source of ``source`` (h, w) pixels: the scaled size,
    whether it flips, and where the crop starts in the scaled (padded) image."""

    source: tuple[int, int]
    scaled: tuple[int, int]
    flip: bool
    top: int
    left: int
    crop: tuple[int, int]

    def scaled_rows(self) -> torch.Tensor:
        """Scaled-image rows of the crop's rows that are not padding."""
        return torch.arange(self.top, min(self.top + self.crop[0], self.scaled[0]))

    def scaled_cols(self) -> torch.Tensor:
        """Scaled-image columns of the crop's columns that are not padding, after the flip."""
        cols = torch.arange(self.left, min(self.left + self.crop[1], self.scaled[1]))
        return self.scaled[1] - 1 - cols if self.flip else cols

    def nearest(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            nearest_sources(self.scaled_rows(), self.source[0], self.scaled[0]),
            nearest_sources(self.scaled_cols(), self.source[1], self.scaled[1]),
        )

    def linear(self) -> tuple[Linear, Linear]:
        return (
            linear_sources(self.scaled_rows(), self.source[0], self.scaled[0]),
            linear_sources(self.scaled_cols(), self.source[1], self.scaled[1]),
        )


def bilinear(planes: torch.Tensor, rows: Linear, cols: Linear) -> torch.Tensor:
    """``planes`` [C, H, W] sampled at the rows and columns (float32). The sampling runs on
    [H, W, C] (the image arrays' own layout): rows and columns then gather as blocks of memory,
    several times faster than gathering along the last axis. Rows are blended first."""
    x = planes.float().permute(1, 2, 0).contiguous()
    by_row = x.index_select(0, rows.low) * rows.low_weight[:, None, None]
    by_row += x.index_select(0, rows.high) * rows.high_weight[:, None, None]
    out = by_row.index_select(1, cols.low) * cols.low_weight[:, None]
    out += by_row.index_select(1, cols.high) * cols.high_weight[:, None]
    return out.permute(2, 0, 1)


class JointTrainTransform:
    def __init__(
        self,
        tasks: tuple[TaskSpec, ...],
        crop: tuple[int, int],
        scale: tuple[float, float] = (0.5, 1.5),
        flip: bool = True,
    ):
        self.tasks = {t.name: t for t in tasks}
        self.crop = crop
        self.scale = scale
        self.flip = flip

    def is_bilinear(self, name: str) -> bool:
        return name == "image" or self.tasks[name].kind in BILINEAR_KINDS

    def plan(self, h: int, w: int) -> CropPlan:
        """Draw the scale, flip and crop position for an ``h`` x ``w`` source."""
        factor = float(torch.empty(1).uniform_(*self.scale))
        size = (max(1, round(h * factor)), max(1, round(w * factor)))
        flip = self.flip and bool(torch.rand(1) < 0.5)
        crop_h, crop_w = self.crop
        pad_h, pad_w = max(crop_h - size[0], 0), max(crop_w - size[1], 0)
        top = int(torch.randint(0, size[0] + pad_h - crop_h + 1, (1,)))
        left = int(torch.randint(0, size[1] + pad_w - crop_w + 1, (1,)))
        return CropPlan((h, w), size, flip, top, left, self.crop)

    def __call__(self, fields: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Augment decoded fields ([C, H, W] or [H, W], one size)."""
        plan = self.plan(*fields["image"].shape[-2:])
        nearest_rows, nearest_cols = plan.nearest()
        linear_rows, linear_cols = plan.linear()
        out = {}
        for name, value in fields.items():
            planes = _planes(value)
            if self.is_bilinear(name):
                block = bilinear(planes, linear_rows, linear_cols).to(value.dtype)
            else:
                block = planes.index_select(1, nearest_rows).index_select(2, nearest_cols)
            out[name] = self._placed(name, block, plan, value.dim())
        return out

    def from_raw(
        self, arrays: Mapping[str, np.ndarray], decoders: Mapping[str, Decoder]
    ) -> dict[str, torch.Tensor]:
        """Augment raw file arrays (HxW or HxWxC, one size), decoding only what the crop reads:
        a nearest field's picked pixels, a bilinear field's window (the whole image when its
        array is float: ``image_from_array`` scales those by their maximum)."""
        plan = self.plan(*arrays["image"].shape[:2])
        nearest_rows, nearest_cols = (i.numpy() for i in plan.nearest())
        linear_rows, linear_cols = plan.linear()
        out = {}
        for name, array in arrays.items():
            if self.is_bilinear(name):
                whole = name == "image" and array.dtype.kind == "f"
                value, block = _decoded_bilinear(
                    array, decoders[name], linear_rows, linear_cols, whole
                )
            else:
                value = decoders[name](array.take(nearest_rows, 0).take(nearest_cols, 1))
                block = _planes(value)
            out[name] = self._placed(name, block, plan, value.dim())
        return out

    def _placed(self, name: str, block: torch.Tensor, plan: CropPlan, dims: int) -> torch.Tensor:
        """The crop: ``block`` (the non-padding pixels, [C, h, w], computed for this sample and
        changed in place) at its top left, the field's fill elsewhere, the normal's x negated
        when flipped; [H, W] fields stay 2-D."""
        if plan.flip and name != "image" and self.tasks[name].kind == "normal":
            block[0].neg_()
        if tuple(block.shape[1:]) == plan.crop:
            out = block.contiguous()
        else:
            fill = 0.0 if name == "image" else pad_value(self.tasks[name])
            out = torch.full((block.shape[0], *plan.crop), fill, dtype=block.dtype)
            out[:, : block.shape[1], : block.shape[2]] = block
        return out if dims == 3 else out[0]


def _planes(value: torch.Tensor) -> torch.Tensor:
    return value if value.dim() == 3 else value[None]


def _decoded_bilinear(
    array: np.ndarray, decode: Decoder, rows: Linear, cols: Linear, whole: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoded window the samples read (or the whole array) and the samples, [C, h, w]."""
    top, left = (0, 0) if whole else (int(rows.low.min()), int(cols.low.min()))
    bottom = array.shape[0] if whole else int(rows.high.max()) + 1
    right = array.shape[1] if whole else int(cols.high.max()) + 1
    # a copy: the cache hands out its read-only maps
    window = decode(np.array(array[top:bottom, left:right]))
    shifted_rows = Linear(rows.low - top, rows.high - top, rows.low_weight, rows.high_weight)
    shifted_cols = Linear(cols.low - left, cols.high - left, cols.low_weight, cols.high_weight)
    return window, bilinear(_planes(window), shifted_rows, shifted_cols).to(window.dtype)
