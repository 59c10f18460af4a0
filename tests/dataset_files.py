"""Tiny NYUv2, Cityscapes and Taskonomy folders written in each exact on-disk format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

H, W = 6, 8


def png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def npy(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return path


def write_nyu_adashare(root: Path, ids=("0001", "0002", "0003"), with_json=True) -> None:
    rng = np.random.default_rng(1)  # its own: contents never depend on test order
    for i in ids:
        png(root / "img" / f"{i}.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        seg = rng.integers(0, 40, (H, W), dtype=np.uint8)
        seg[0, 0] = 255
        png(root / "seg" / f"{i}.png", seg)
        normal = np.full((H, W, 3), 127, np.uint8)
        normal[..., 2] = 255 - 1  # (0, 0, ~1)
        normal[1, 1] = (255, 10, 10)  # any channel 255: invalid
        png(root / "normal_mask" / f"{i}.png", normal)
        depth = rng.uniform(0.5, 9.0, (H, W)).astype(np.float32)
        depth[2, 3] = 0.0
        npy(root / "depth" / f"{i}.npy", depth)
    if with_json:
        rows = [
            [f"/img/{i}.png", f"/seg/{i}.png", f"/normal_mask/{i}.png", f"/depth/{i}.npy"]
            for i in ids
        ]
        (root / "nyu_v2_3task.json").write_text(json.dumps({"train": rows[:2], "test": rows[2:]}))


def write_cityscapes_mtan(root: Path, label_folder="label_7") -> None:
    rng = np.random.default_rng(2)  # its own: contents never depend on test order
    for split in ("train", "val"):
        for i in range(2):
            npy(root / split / "image" / f"{i}.npy", rng.random((H, W, 3)).astype(np.float32))
            npy(
                root / split / label_folder / f"{i}.npy",
                rng.integers(-1, 7, (H, W)).astype(np.float32),
            )
            npy(
                root / split / "label_19" / f"{i}.npy",
                rng.integers(-1, 19, (H, W)).astype(np.float32),
            )
            depth = rng.random((H, W, 1)).astype(np.float32)
            depth[0, 0] = 0
            npy(root / split / "depth" / f"{i}.npy", depth)


TASKONOMY_FULL = (512, 512)  # Taskonomy's released images
CITYSCAPES_FULL = (256, 512)  # AdaShare's and the DiSparse authors' Cityscapes arrays


def write_taskonomy(
    root: Path, buildings=("alpha", "beta", "gamma"), size: tuple[int, int] = (H, W)
) -> None:
    """Taskonomy as released (a folder per building and domain, one PNG per point and domain)
    with the official split file; ``size=TASKONOMY_FULL`` for full-size images."""
    rng = np.random.default_rng(3)  # its own: contents never depend on test order
    for b in buildings:
        for p in range(2):
            stem = f"point_{p}_view_0_domain_"
            png(
                root / b / "rgb" / f"{stem}rgb.png",
                rng.integers(0, 256, (*size, 3), dtype=np.uint8),
            )
            png(
                root / b / "segmentsemantic" / f"{stem}segmentsemantic.png",
                rng.integers(0, 18, size, dtype=np.uint8),
            )
            png(
                root / b / "normal" / f"{stem}normal.png",
                rng.integers(0, 256, (*size, 3), dtype=np.uint8),
            )
            depth = rng.integers(0, 60000, size).astype(np.uint16)
            depth[0, 0] = 65000  # invalid
            png(root / b / "depth_zbuffer" / f"{stem}depth_zbuffer.png", depth)
            png(
                root / b / "keypoints2d" / f"{stem}keypoints2d.png",
                rng.integers(0, 65535, size).astype(np.uint16),
            )
            png(
                root / b / "edge_texture" / f"{stem}edge_texture.png",
                rng.integers(0, 65535, size).astype(np.uint16),
            )
    csv = "id,train,val,test\ralpha,1,0,0\rbeta,0,1,0\rgamma,0,0,1\r"  # old Mac line endings
    (root / "train_val_test_tiny.csv").write_text(csv)


NYU_FULL = (480, 640)  # NYUv2's images, as the AdaShare/DiSparse tree stores them


def write_nyu_full_size(root: Path, train: int = 2, test: int = 2) -> None:
    """A NYUv2 tree in the AdaShare layout at full resolution (480x640): RGB PNGs, 40-class label
    PNGs with unlabelled pixels, normal PNGs with invalid pixels, depth in metres as float32
    ``.npy``, and the split file. Rendered (smooth gradients and blocks, so PNGs compress and
    decode as photos roughly do), so tests never depend on data outside the repository."""
    rng = np.random.default_rng(2)
    height, width = NYU_FULL
    y, x = np.mgrid[0:height, 0:width]
    ids = [f"{i:04d}" for i in range(1, train + test + 1)]
    for i in ids:
        shift = int(rng.integers(0, 255))
        image = np.stack([(x + shift) % 256, (y + 2 * shift) % 256, (x + y) % 256], axis=-1)
        png(root / "img" / f"{i}.png", image.astype(np.uint8))
        seg = ((x // 80 + y // 60 + shift) % 40).astype(np.uint8)
        seg[:8] = 255
        png(root / "seg" / f"{i}.png", seg)
        normal = np.full((height, width, 3), 127, np.uint8)
        normal[..., 2] = 254
        normal[:, :4] = 255  # invalid
        png(root / "normal_mask" / f"{i}.png", normal)
        depth = (0.5 + (x + y) / (height + width) * 8.0).astype(np.float32)
        npy(root / "depth" / f"{i}.npy", depth)
    rows = [
        [f"/img/{i}.png", f"/seg/{i}.png", f"/normal_mask/{i}.png", f"/depth/{i}.npy"] for i in ids
    ]
    split = {"train": rows[:train], "test": rows[train:]}
    (root / "nyu_v2_3task.json").write_text(json.dumps(split))


def write_cityscapes_full_size(root: Path, train: int = 2, test: int = 2) -> None:
    """Cityscapes in the AdaShare layout at its 256x512: image, disparity (0 = no measurement)
    and 2/7/19-class labels (-1 = ignore) as ``.npy``, listed by ``cityscape.json``."""
    rng = np.random.default_rng(4)
    height, width = CITYSCAPES_FULL
    rows = []
    for i in range(train + test):
        image = rng.random((height, width, 3)).astype(np.float32)
        depth = rng.random((height, width, 1)).astype(np.float32)
        depth[:4] = 0
        names = {"image": image, "depth": depth}
        for classes in (2, 7, 19):
            labels = rng.integers(-1, classes, (height, width)).astype(np.float32)
            names[f"label{classes}"] = labels
        for folder, array in names.items():
            npy(root / folder / f"{i}.npy", array)
        rows.append([f"/{folder}/{i}.npy" for folder in names])
    split = {"train": rows[:train], "test": rows[train:]}
    (root / "cityscape.json").write_text(json.dumps(split))
