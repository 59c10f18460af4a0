"""Joint training augmentation: the same geometry for image and labels, flipped normals,
padding with each task's "no label" value."""

from __future__ import annotations

import torch

from core.tasks import make_task
from datasets.transforms import JointTrainTransform

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
