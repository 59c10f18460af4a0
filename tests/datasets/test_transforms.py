"""Joint training augmentation: the same geometry for image and labels, flipped normals,
padding with each task's "no label" value."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from core.tasks import make_task
from datasets.file_dataset import depth_from_array, image_from_array, labels_from_array
from datasets.nyuv2 import normals_from_png
from datasets.transforms import JointTrainTransform, pad_value

TASKS = (make_task("seg", num_classes=5), make_task("normal"), make_task("depth"))


def sample(h=4, w=6):
    image = torch.arange(3 * h * w, dtype=torch.float32).view(3, h, w) / 100
    seg = torch.arange(h * w).view(h, w) % 5
    normal = torch.nn.functional.normalize(torch.rand(3, h, w) + 0.1, dim=0)
    depth = torch.rand(1, h, w) + 0.5
    return {"image": image, "seg": seg, "normal": normal, "depth": depth}


def test_flip_mirrors_every_field_and_negates_normal_x():
    fields = sample()
    transform = JointTrainTransform(TASKS, crop=(4, 6), scale=(1.0, 1.0), flip=True)
    for seed in range(20):  # find a draw that flips
        torch.manual_seed(seed)
        out = transform({k: v.clone() for k, v in fields.items()})
        if not torch.equal(out["seg"], fields["seg"]):
            break
    assert torch.equal(out["seg"], fields["seg"].flip(-1))
    assert torch.allclose(out["image"], fields["image"].flip(-1))
    assert torch.allclose(out["normal"][0], -fields["normal"][0].flip(-1))
    assert torch.allclose(out["normal"][1:], fields["normal"][1:].flip(-1))
    assert out["seg"].dtype == torch.int64


def test_crop_larger_than_image_pads_with_ignore_values():
    torch.manual_seed(0)
    transform = JointTrainTransform(TASKS, crop=(10, 12), scale=(1.0, 1.0), flip=False)
    out = transform(sample())
    assert out["image"].shape == (3, 10, 12) and out["seg"].shape == (10, 12)
    assert torch.all(out["seg"][4:, :] == 255) and torch.all(out["seg"][:, 6:] == 255)
    assert torch.all(out["depth"][:, 4:, :] == 0) and torch.all(out["normal"][:, :, 6:] == 0)
    assert torch.equal(out["seg"][:4, :6], sample()["seg"])


def test_random_scale_keeps_fields_aligned_and_is_seeded():
    fields = sample(8, 8)
    transform = JointTrainTransform(TASKS, crop=(6, 6))
    torch.manual_seed(3)
    a = transform(dict(fields))
    torch.manual_seed(3)
    b = transform(dict(fields))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert {tuple(v.shape[-2:]) for v in a.values()} == {(6, 6)}
    assert set(a["seg"].unique().tolist()) <= set(range(5)) | {255}  # nearest: no blended labels


def resized_whole(transform: JointTrainTransform, fields: dict[str, torch.Tensor], seed: int):
    """The augmentation as defined: each whole field resized with torchvision, flipped, padded,
    cropped (what the suite computed before it sampled only the crop), from the same draws."""
    torch.manual_seed(seed)
    plan = transform.plan(*fields["image"].shape[-2:])
    out = {}
    for name, value in fields.items():
        planes = (value if value.dim() == 3 else value[None]).float()
        mode = (
            InterpolationMode.BILINEAR if transform.is_bilinear(name) else InterpolationMode.NEAREST
        )
        x = TF.resize(planes, list(plan.scaled), interpolation=mode, antialias=False)
        if plan.flip:
            x = TF.horizontal_flip(x)
            if name == "normal":
                x[0] = -x[0]
        pad_h, pad_w = max(plan.crop[0] - plan.scaled[0], 0), max(plan.crop[1] - plan.scaled[1], 0)
        fill = 0.0 if name == "image" else pad_value(transform.tasks[name])
        x = TF.pad(x, [0, 0, pad_w, pad_h], fill=fill)
        x = x[:, plan.top : plan.top + plan.crop[0], plan.left : plan.left + plan.crop[1]]
        out[name] = x.to(value.dtype) if value.dim() == 3 else x[0].to(value.dtype)
    return out


@pytest.mark.parametrize("h, w, crop", [(48, 64, (32, 32)), (37, 53, (40, 21)), (20, 30, (16, 48))])
def test_sampling_only_the_crop_equals_resizing_whole_fields(h, w, crop):
    """Labels exactly (nearest, PyTorch's index formula); the bilinear image to float rounding."""
    torch.manual_seed(0)
    fields = sample(h, w)
    fields["seg"] = torch.randint(0, 5, (h, w))
    transform = JointTrainTransform(TASKS, crop=crop)
    for seed in range(40):
        expected = resized_whole(transform, fields, seed)
        torch.manual_seed(seed)
        got = transform({k: v.clone() for k, v in fields.items()})
        for name in ("seg", "normal", "depth"):
            assert torch.equal(got[name], expected[name]), (name, seed)
        assert torch.allclose(got["image"], expected["image"], atol=1e-6), seed


def test_from_raw_arrays_equals_decoding_first():
    """Decoding only the pixels the crop reads gives what decoding whole arrays gives."""
    rng = np.random.default_rng(0)
    arrays = {
        "image": rng.integers(0, 256, (45, 61, 3), dtype=np.uint8),
        "seg": rng.integers(0, 5, (45, 61), dtype=np.uint8),
        "normal": rng.integers(0, 256, (45, 61, 3), dtype=np.uint8),
        "depth": rng.random((45, 61), dtype=np.float32) + 0.5,
    }
    decoders = {
        "image": image_from_array,
        "seg": lambda a: labels_from_array(a, 5),
        "normal": normals_from_png,
        "depth": depth_from_array,
    }
    transform = JointTrainTransform(TASKS, crop=(40, 40))
    for seed in range(30):
        torch.manual_seed(seed)
        expected = transform({k: decoders[k](a) for k, a in arrays.items()})
        torch.manual_seed(seed)
        got = transform.from_raw(arrays, decoders)
        for name in ("seg", "normal", "depth"):
            assert torch.equal(got[name], expected[name]), (name, seed)
        assert torch.allclose(got["image"], expected["image"], atol=1e-6), seed
