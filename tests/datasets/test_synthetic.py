"""The embedded dataset: deterministic, cached, physically consistent labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.options import OptionError
from datasets.registry import build_dataset, list_datasets
from datasets.synthetic.generate import RenderSettings, render_sample
from datasets.synthetic.render import camera_rays
from datasets.synthetic.scene import CLASS_NAMES, sample_room

SETTINGS = RenderSettings(height=24, width=32)


def test_same_seed_same_sample_other_seed_other_sample():
    a, b, c = render_sample(5, SETTINGS), render_sample(5, SETTINGS), render_sample(6, SETTINGS)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["image"], c["image"])


def test_sample_layout_and_ranges():
    s = render_sample(1, SETTINGS)
    assert s["image"].shape == (3, 24, 32) and s["image"].dtype == np.float32
    assert s["image"].min() >= 0.0 and s["image"].max() <= 1.0
    assert s["seg"].shape == (24, 32) and s["seg"].max() < len(CLASS_NAMES)
    assert np.allclose(np.linalg.norm(s["normal"], axis=0), 1.0, atol=1e-5)
    assert s["depth"].min() > 0.1 and s["depth"].max() < 20
    for key in ("keypoint", "edge"):
        assert s[key].shape == (1, 24, 32) and s[key].min() >= 0 and s[key].max() <= 1


def test_normals_face_the_camera():
    for seed in range(5):
        sample = render_sample(seed, SETTINGS)
        rays, _, _ = camera_rays(24, 32, SETTINGS.fov_deg, sample_room(np.random.default_rng(seed)))
        normals = sample["normal"].reshape(3, -1).T
        assert np.all(np.einsum("ij,ij->i", normals, rays) <= 1e-6)


def test_class_boundaries_are_edges():
    for seed in range(5):
        s = render_sample(seed, SETTINGS)
        seg, edge = s["seg"], s["edge"][0]
        boundary = np.zeros_like(edge, bool)
        boundary[:, :-1] |= seg[:, :-1] != seg[:, 1:]
        boundary[:-1, :] |= seg[:-1, :] != seg[1:, :]
        assert np.all(edge[boundary] == 1)


def test_floor_normals_agree_with_depth_gradient_direction():
    # on the floor, depth grows towards the top of the image (farther away)
    s = render_sample(3, SETTINGS)
    depth, seg = s["depth"][0], s["seg"]
    col = depth.shape[1] // 2
    floor_rows = np.where(seg[:, col] == 0)[0]
    assert len(floor_rows) > 2
    assert np.all(np.diff(depth[floor_rows, col]) < 0)


def test_scenes_use_at_least_six_classes():
    seen = set()
    for seed in range(20):
        seen |= set(np.unique(render_sample(seed, SETTINGS)["seg"]).tolist())
    assert len(seen) >= 6


def test_build_splits_cache_and_reload(tmp_path):
    options = {
        "num_train": 6,
        "num_val": 2,
        "num_test": 3,
        "height": 16,
        "width": 24,
        "tasks": ["seg", "depth"],
        "cache_dir": str(tmp_path),
    }
    first = build_dataset("synthetic", options)
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.npz")) == ["test", "train", "val"]
    second = build_dataset("synthetic", options)
    assert [len(first.splits[s]) for s in ("train", "val", "test")] == [6, 2, 3]
    item_a, item_b = first.splits["test"][2], second.splits["test"][2]
    assert set(item_a) == {"image", "seg", "depth"}
    assert all(torch.equal(item_a[k], item_b[k]) for k in item_a)
    assert item_a["seg"].dtype == torch.int64
    # splits are disjoint scenes
    assert not torch.equal(first.splits["train"][0]["image"], first.splits["val"][0]["image"])


def cached_train_split(tmp_path, num_train: int):
    """(options, the built dataset, its cached train file, that file's bytes)."""
    options = {"num_train": num_train, "num_val": 1, "num_test": 1, "height": 16, "width": 16}
    options["cache_dir"] = str(tmp_path)
    first = build_dataset("synthetic", options)
    cached = next(tmp_path.glob("train-*.npz"))
    return options, first, cached, cached.read_bytes()


@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_a_damaged_cache_file_is_rendered_again(tmp_path, caplog, damage):
    options, first, cached, data = cached_train_split(tmp_path, 2)
    cached.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"")
    second = build_dataset("synthetic", options)
    assert f"cached split {cached} is unreadable" in caplog.text
    assert torch.equal(first.splits["train"][1]["image"], second.splits["train"][1]["image"])
    assert cached.read_bytes() == data  # rewritten whole


@pytest.mark.parametrize(
    "damage", ["no arrays", "missing seg", "seg shape", "seg dtype", "other scene"]
)
def test_a_readable_cache_file_with_wrong_arrays_is_rendered_again(tmp_path, caplog, damage):
    options, first, cached, data = cached_train_split(tmp_path, 3)
    with np.load(cached) as arrays:
        arrays = {k: arrays[k] for k in arrays.files}
    if damage == "no arrays":
        arrays = {}
    elif damage == "missing seg":
        del arrays["seg"]
    elif damage == "seg shape":
        arrays["seg"] = arrays["seg"][:, :8]
    elif damage == "seg dtype":
        arrays["seg"] = arrays["seg"].astype(np.float32)
    else:
        arrays = {k: v[::-1].copy() for k, v in arrays.items()}  # scenes in another order
    np.savez_compressed(cached, **arrays)
    second = build_dataset("synthetic", options)
    assert f"cached split {cached} does not match its scenes" in caplog.text
    assert all(
        torch.equal(first.splits["train"][i][k], second.splits["train"][i][k])
        for i in range(3)
        for k in first.splits["train"][i]
    )
    assert cached.read_bytes() == data  # rendered and written again


def test_bad_options_name_the_option(tmp_path):
    with pytest.raises(OptionError, match="dataset.tasks: unknown task"):
        build_dataset("synthetic", {"tasks": ["seg", "albedo"], "cache_dir": str(tmp_path)})
    with pytest.raises(OptionError, match="dataset: unknown option.*num_scenes"):
        build_dataset("synthetic", {"num_scenes": 3})
    with pytest.raises(
        KeyError, match="registered datasets: cityscapes, nyuv2, synthetic, taskonomy"
    ):
        build_dataset("nyu", {})
    assert "synthetic" in list_datasets()
