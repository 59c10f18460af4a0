"""Joint training augmentation for image and labels (the DiSparse/AdaShare protocol): random
scale in [0.5, 1.5], horizontal flip (negating the normals' x component) and a random crop, padded
with each field's "no label" value where the scaled image is smaller than the crop.

Randomness comes from torch's global generator, which the runner seeds per cell. Evaluation
uses no transform (full resolution)."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from core.tasks import TaskSpec

# Continuous maps are resampled bilinearly; labels whose "invalid" value must not blend with
# valid ones (classes, normals and depth with 0 = invalid) are resampled by nearest neighbour.
BILINEAR_KINDS = ("keypoint", "edge")


def pad_value(task: TaskSpec) -> float:
    return float(task.ignore_value) if task.ignore_value is not None else 0.0


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

    def _mode(self, name: str) -> InterpolationMode:
        if name == "image" or self.tasks[name].kind in BILINEAR_KINDS:
            return InterpolationMode.BILINEAR
        return InterpolationMode.NEAREST

    def __call__(self, fields: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h, w = fields["image"].shape[-2:]
        factor = float(torch.empty(1).uniform_(*self.scale))
        size = [max(1, round(h * factor)), max(1, round(w * factor))]
        flip = self.flip and bool(torch.rand(1) < 0.5)
        crop_h, crop_w = self.crop
        pad_h, pad_w = max(crop_h - size[0], 0), max(crop_w - size[1], 0)
        top = int(torch.randint(0, size[0] + pad_h - crop_h + 1, (1,)))
        left = int(torch.randint(0, size[1] + pad_w - crop_w + 1, (1,)))
        out = {}
        for name, value in fields.items():
            x = value if value.dim() == 3 else value[None]
            dtype = x.dtype
            x = TF.resize(x.float(), size, interpolation=self._mode(name), antialias=False)
            if flip:
                x = TF.horizontal_flip(x)
                if name != "image" and self.tasks[name].kind == "normal":
                    x[0] = -x[0]
            fill = 0.0 if name == "image" else pad_value(self.tasks[name])
            if pad_h or pad_w:
                x = TF.pad(x, [0, 0, pad_w, pad_h], fill=fill)
            x = x[..., top : top + crop_h, left : left + crop_w].to(dtype)
            out[name] = x if value.dim() == 3 else x[0]
        return out
