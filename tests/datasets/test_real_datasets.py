"""NYUv2, Cityscapes and Taskonomy loaders on files written in each exact on-disk format, on the
real NYUv2 samples in ../shared/data, and every bad-input case."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from datasets.files import DatasetError
from datasets.registry import build_dataset
from tests.dataset_files import (
    npy,
    png,
    write_cityscapes_mtan,
    write_nyu_adashare,
    write_taskonomy,
)
from tests.helpers import SHARED_DATA

H, W = 6, 8


def test_nyuv2_adashare_layout_decodes_labels_and_ignore_values(tmp_path):
    write_nyu_adashare(tmp_path)
    bundle = build_dataset("nyuv2", {"root": str(tmp_path)})
    assert [len(bundle.splits[s]) for s in ("train", "val", "test")] == [2, 1, 1]
    sample = bundle.splits["train"][0]
    assert sample["image"].shape == (3, H, W) and 0 <= sample["image"].min() <= 1
    assert sample["seg"].dtype == torch.int64 and sample["seg"][0, 0] == 255
    assert torch.allclose(
        sample["normal"][:, 0, 0], torch.tensor([127 / 127.5 - 1, 127 / 127.5 - 1, 254 / 127.5 - 1])
    )
    assert torch.equal(sample["normal"][:, 1, 1], torch.zeros(3))  # invalid pixel
    assert sample["depth"].shape == (1, H, W) and sample["depth"][0, 2, 3] == 0
    assert [t.name for t in bundle.tasks] == ["seg", "normal", "depth"]
    assert bundle.tasks[0].channels == 40


def test_nyuv2_adashare_splits_built_from_folders_without_json(tmp_path):
    write_nyu_adashare(tmp_path, ids=("0001", "0002", "0003", "0004", "0005"), with_json=False)
    bundle = build_dataset("nyuv2", {"root": str(tmp_path), "holdout": 0.4})
    assert len(bundle.splits["train"]) == 3 and len(bundle.splits["test"]) == 2


def test_nyuv2_mtan_layout(tmp_path):
    rng = np.random.default_rng(11)
    for split, count in (("train", 3), ("val", 2)):
        for i in range(count):
            npy(tmp_path / split / "image" / f"{i}.npy", rng.random((H, W, 3)).astype(np.float32))
            label = rng.integers(0, 13, (H, W)).astype(np.float32)
            label[0, :2] = -1
            npy(tmp_path / split / "label" / f"{i}.npy", label)
            npy(tmp_path / split / "depth" / f"{i}.npy", rng.random((H, W, 1)).astype(np.float32))
            normal = np.zeros((H, W, 3), np.float32)
            normal[..., 1] = 1.0
            npy(tmp_path / split / "normal" / f"{i}.npy", normal)
    bundle = build_dataset("nyuv2", {"root": str(tmp_path), "num_classes": 13})
    assert [len(bundle.splits[s]) for s in ("train", "val")] == [3, 2]
    sample = bundle.splits["val"][1]
    assert sample["seg"][0, 0] == 255 and sample["seg"].max() <= 255
    assert sample["depth"].shape == (1, H, W)
    assert torch.allclose(sample["normal"][1], torch.ones(H, W))


@pytest.mark.skipif(
    not (SHARED_DATA / "nyuv2_adashare_samples").is_dir(),
    reason="../shared/data/nyuv2_adashare_samples is absent",
)
def test_nyuv2_real_samples():
    bundle = build_dataset("nyuv2", {"root": str(SHARED_DATA / "nyuv2_adashare_samples")})
    assert bundle.resolution == (480, 640)
    for split in ("train", "test"):
        sample = bundle.splits[split][0]
        normal = sample["normal"]
        valid = normal.abs().sum(0) > 0
        assert valid.float().mean() > 0.3
        assert (normal[:, valid].norm(dim=0) - 1).abs().mean() < 0.05  # near unit length
        depth = sample["depth"][sample["depth"] > 0]
        assert depth.min() > 0.3 and depth.max() < 12  # metres, indoor
        seg = sample["seg"]
        assert set(seg.unique().tolist()) <= set(range(40)) | {255}


@pytest.mark.parametrize("label_folder", ["label_7", "label"])
def test_cityscapes_mtan_layout_both_class_counts(tmp_path, label_folder):
    write_cityscapes_mtan(tmp_path, label_folder)
    seven = build_dataset("cityscapes", {"root": str(tmp_path), "num_classes": 7})
    nineteen = build_dataset("cityscapes", {"root": str(tmp_path)})
    assert seven.tasks[0].channels == 7 and nineteen.tasks[0].channels == 19
    sample = seven.splits["train"][0]
    assert sample["seg"].max() <= 255 and sample["depth"][0, 0, 0] == 0
    assert set(sample) == {"image", "seg", "depth"}


def test_cityscapes_adashare_json_layout(tmp_path):
    rng = np.random.default_rng(12)
    rows = []
    for i in range(3):
        rows.append(
            [
                str(
                    npy(
                        tmp_path / "images" / f"{i}.npy",
                        rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
                    ).relative_to(tmp_path)
                ),
                str(
                    npy(
                        tmp_path / "labels" / f"{i}.npy",
                        rng.integers(0, 19, (H, W)).astype(np.int32),
                    ).relative_to(tmp_path)
                ),
                str(
                    npy(
                        tmp_path / "depths" / f"{i}.npy", rng.random((H, W)).astype(np.float32)
                    ).relative_to(tmp_path)
                ),
            ]
        )
    (tmp_path / "cityscape.json").write_text(json.dumps({"train": rows[:2], "test": rows[2:]}))
    bundle = build_dataset("cityscapes", {"root": str(tmp_path)})
    sample = bundle.splits["test"][0]
    assert sample["image"].max() <= 1 and sample["seg"].dtype == torch.int64


def test_taskonomy_layout_splits_and_decoding(tmp_path):
    write_taskonomy(tmp_path)
    prior = SHARED_DATA / "taskonomy_meta" / "semseg_prior_factor.npy"
    options = {"root": str(tmp_path)}
    if prior.is_file():
        options["class_prior_file"] = str(prior)
    bundle = build_dataset("taskonomy", options)
    assert [len(bundle.splits[s]) for s in ("train", "val", "test")] == [2, 2, 2]
    sample = bundle.splits["train"][0]
    assert set(sample) == {"image", "seg", "normal", "depth", "keypoint", "edge"}
    assert sample["depth"][0, 0, 0] == 0  # >= 64500 is invalid
    assert 0 < sample["depth"].max() <= 1  # log-scaled
    assert sample["keypoint"].min() >= 0 and sample["keypoint"].max() <= 1
    assert set(sample["seg"].unique().tolist()) <= set(range(17)) | {255}
    if prior.is_file():
        assert len(bundle.tasks[0].class_weights) == 17


def test_taskonomy_missing_domain_file_is_reported_not_fatal(tmp_path, caplog):
    write_taskonomy(tmp_path)
    (tmp_path / "alpha" / "normal" / "point_1_view_0_domain_normal.png").unlink()
    with caplog.at_level(logging.WARNING):
        bundle = build_dataset("taskonomy", {"root": str(tmp_path)})
    assert len(bundle.splits["train"]) == 1
    assert "point_1_view_0_domain_normal.png" in caplog.text


@pytest.mark.skipif(not (SHARED_DATA / "taskonomy_meta").is_dir(), reason="no taskonomy_meta")
def test_official_tiny_split_file_with_cr_line_endings():
    from datasets.taskonomy import read_split_file

    splits = read_split_file(SHARED_DATA / "taskonomy_meta" / "train_val_test_tiny.csv")
    assert len(splits["train"]) == 25 and len(splits["val"]) == 5 and len(splits["test"]) == 5


@pytest.mark.parametrize("name", ["nyuv2", "cityscapes", "taskonomy"])
def test_missing_or_unset_root_is_a_clear_error(name, tmp_path):
    with pytest.raises(DatasetError, match="dataset.root is not set"):
        build_dataset(name, {})
    with pytest.raises(DatasetError, match=f"dataset.root={tmp_path / 'nope'} does not exist"):
        build_dataset(name, {"root": str(tmp_path / "nope")})


def test_unknown_layout_names_what_was_expected(tmp_path):
    with pytest.raises(DatasetError, match="no known NYUv2 layout; expected adashare: img/"):
        build_dataset("nyuv2", {"root": str(tmp_path)})


def test_empty_split_is_an_error(tmp_path):
    write_taskonomy(tmp_path, buildings=("alpha", "beta"))  # gamma (test) has no folder
    with pytest.raises(DatasetError, match="the test split has no samples"):
        build_dataset("taskonomy", {"root": str(tmp_path)})


def test_missing_unreadable_and_mismatched_files_are_named(tmp_path):
    """Files that break after the dataset was opened, read from the files (no array cache)."""
    write_nyu_adashare(tmp_path)
    bundle = build_dataset("nyuv2", {"root": str(tmp_path), "array_cache": None})
    (tmp_path / "seg" / "0001.png").unlink()
    with pytest.raises(DatasetError, match=r"missing file .*seg/0001.png"):
        bundle.splits["train"][0]
    (tmp_path / "seg" / "0002.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read image .*seg/0002.png"):
        bundle.splits["train"][1]
    npy(tmp_path / "depth" / "0003.npy", np.ones((H + 1, W), np.float32))
    with pytest.raises(DatasetError, match=r"depth/0003.npy is \(7, 8\) but its image"):
        bundle.splits["test"][0]


def test_out_of_range_labels_and_wrong_class_count_are_errors(tmp_path):
    write_nyu_adashare(tmp_path)
    with pytest.raises(DatasetError, match="13-class variant needs the mtan layout"):
        build_dataset("nyuv2", {"root": str(tmp_path), "num_classes": 13})
    png(tmp_path / "seg" / "0001.png", np.full((H, W), 50, np.uint8))
    bundle = build_dataset("nyuv2", {"root": str(tmp_path)})
    with pytest.raises(DatasetError, match="label 50 is out of range for 40 classes"):
        bundle.splits["train"][0]


def test_bad_files_that_used_to_load_silently_or_crash_are_named_errors(tmp_path):
    write_nyu_adashare(tmp_path / "nyu")
    nyu = build_dataset("nyuv2", {"root": str(tmp_path / "nyu"), "array_cache": None})
    png(tmp_path / "nyu" / "normal_mask" / "0001.png", np.full((H, W), 127, np.uint8))  # grey
    with pytest.raises(DatasetError, match=r"normal_mask/0001.png.*HxWx3 normal map"):
        nyu.splits["train"][0]
    npy(tmp_path / "nyu" / "depth" / "0002.npy", np.full((H, W), 2500, np.uint16))  # millimetres
    with pytest.raises(DatasetError, match=r"depth/0002.npy.*metres as floats.*uint16"):
        nyu.splits["train"][1]
    npy(tmp_path / "nyu" / "depth" / "0003.npy", np.ones((H, W), np.complex64))
    with pytest.raises(DatasetError, match=r"depth/0003.npy.*complex64"):
        nyu.splits["test"][0]
    write_taskonomy(tmp_path / "taskonomy")
    taskonomy = build_dataset(
        "taskonomy", {"root": str(tmp_path / "taskonomy"), "array_cache": None}
    )
    seg = tmp_path / "taskonomy" / "alpha" / "segmentsemantic"
    png(seg / "point_0_view_0_domain_segmentsemantic.png", np.full((H, W), 40, np.uint8))
    with pytest.raises(DatasetError, match=r"point_0_view_0_domain_segmentsemantic.png.*0 .*to 17"):
        taskonomy.splits["train"][0]


@pytest.mark.parametrize("num_classes", [19, 7])
def test_cityscapes_json_rows_as_adashare_and_the_authors_write_them(tmp_path, num_classes):
    rng = np.random.default_rng(13)
    rows = []
    for i in range(3):
        names = ["image", "depth", "label2", "label7", "label19"]
        arrays = [
            rng.random((H, W, 3)).astype(np.float32),
            rng.random((H, W)).astype(np.float32),
            np.full((H, W), 1, np.int32),
            np.full((H, W), 6, np.int32),
            np.full((H, W), 18, np.int32),
        ]
        rows.append(
            [f"/{n}/{i}.npy" for n in names]  # leading slash, as in their file
        )
        for name, array in zip(names, arrays, strict=True):
            npy(tmp_path / name / f"{i}.npy", array)
    (tmp_path / "cityscape.json").write_text(json.dumps({"train": rows[:2], "test": rows[2:]}))
    bundle = build_dataset("cityscapes", {"root": str(tmp_path), "num_classes": num_classes})
    sample = bundle.splits["test"][0]
    assert int(sample["seg"].unique()) == num_classes - 1  # label19 holds 18, label7 holds 6
    torch.testing.assert_close(
        sample["depth"][0], torch.from_numpy(np.load(tmp_path / "depth" / "2.npy"))
    )


def test_taskonomy_authors_conventions_decode_given_16_bit_values():
    from datasets.taskonomy import clipped_map_decoder, seg_decoder

    keypoint = clipped_map_decoder(0.005)(np.array([[0, 164, 328, 400]], np.uint16))
    # 0 -> -1; 164 / 2^16 = 0.0025 is half the range -> about 0; 328 / 2^16 = 0.005005 and 400
    # are above 0.005, clipped -> 1
    torch.testing.assert_close(
        keypoint[0], torch.tensor([-1.0, 164 / 2**16 / 0.005 * 2 - 1, 1.0, 1.0])
    )
    assert abs(keypoint[0, 1].item()) < 0.001
    edge = clipped_map_decoder(0.08)(np.array([[2621, 60000]], np.uint16))
    assert edge[0, 0].item() == pytest.approx(2621 / 2**16 / 0.08 * 2 - 1) and edge[0, 1] == 1
    stored = np.array([[0, 1], [5, 17]], np.uint8)
    assert seg_decoder("authors")(stored).tolist() == [[0, 0], [4, 16]]
    assert seg_decoder("suite")(stored).tolist() == [[255, 0], [4, 16]]


def test_taskonomy_remapped_layout_resize_and_missing_buildings(tmp_path, caplog):
    write_taskonomy(tmp_path / "raw")
    remapped = tmp_path / "remapped"
    for building_dir in (tmp_path / "raw").iterdir():
        if building_dir.is_dir():
            for domain_dir in building_dir.iterdir():
                target = remapped / domain_dir.name / "taskonomy" / building_dir.name
                target.parent.mkdir(parents=True, exist_ok=True)
                domain_dir.rename(target)
    csv = (tmp_path / "raw" / "train_val_test_tiny.csv").read_text()
    (remapped / "train_val_test_tiny.csv").write_text(csv + "delta,1,0,0\r")  # not on disk
    with caplog.at_level(logging.WARNING):
        bundle = build_dataset(
            "taskonomy",
            {"root": str(remapped), "conventions": "authors", "resize": [12, 16], "limit": 1},
        )
    assert "taskonomy/train: 1 of the split's 2 buildings are not on disk: delta" in caplog.text
    assert [len(bundle.splits[s]) for s in ("train", "val", "test")] == [1, 1, 1]  # limit 1
    sample = bundle.splits["train"][0]
    assert sample["image"].shape == (3, 12, 16) and sample["seg"].shape == (12, 16)
    assert sample["keypoint"].min() >= -1 and sample["keypoint"].max() <= 1


def test_a_sample_missing_from_one_folder_is_named_instead_of_dropped(tmp_path):
    """A missing img/*.png silently dropped the sample and shifted the folder-built split."""
    write_nyu_adashare(tmp_path, ids=("0001", "0002", "0003", "0004"), with_json=False)
    (tmp_path / "img" / "0002.png").unlink()
    with pytest.raises(DatasetError, match=r"1 file\(s\) missing .*img/0002.png"):
        build_dataset("nyuv2", {"root": str(tmp_path)})


def test_float_depth_in_millimetres_is_named(tmp_path):
    """Float32 depth in millimetres trained silently on values 1000x too large."""
    write_nyu_adashare(tmp_path)
    npy(tmp_path / "depth" / "0001.npy", np.full((H, W), 2500.0, np.float32))
    bundle = build_dataset("nyuv2", {"root": str(tmp_path)})
    with pytest.raises(DatasetError, match=r"depth/0001.npy.*deepest value is 2500.*millimetres"):
        bundle.splits["train"][0]


def test_files_missing_when_the_dataset_is_built_are_named_folder_by_folder(tmp_path):
    import shutil

    write_nyu_adashare(tmp_path)  # its index lists every file
    build_dataset("nyuv2", {"root": str(tmp_path)})  # complete: builds
    shutil.rmtree(tmp_path / "depth")
    (tmp_path / "seg" / "0002.png").unlink()
    with pytest.raises(DatasetError) as error:
        build_dataset("nyuv2", {"root": str(tmp_path)})
    message = str(error.value)
    assert f"folder {tmp_path / 'depth'} is missing" in message
    assert f"1 file(s) missing in {tmp_path / 'seg'} (e.g. 0002.png)" in message


@pytest.mark.parametrize("writer", [write_nyu_adashare, write_cityscapes_mtan, write_taskonomy])
def test_written_files_do_not_depend_on_what_was_written_before(writer, tmp_path):
    """Each writer draws from its own seeded generator: the same folder comes out byte for byte
    whichever writers ran before it (one shared generator made files depend on test order)."""
    writer(tmp_path / "first")
    for other in (write_nyu_adashare, write_cityscapes_mtan, write_taskonomy):
        other(tmp_path / "between" / other.__name__)
    writer(tmp_path / "again")
    first, again = contents(tmp_path / "first"), contents(tmp_path / "again")
    assert first and first == again


def contents(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
