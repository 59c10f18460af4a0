"""The array cache of file datasets (issue 25): the same tensors as reading the files, for every
field, augmentation included; built once; a changed file read again; fields whose files differ
in shape not cached."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from datasets.files import DatasetError
from datasets.registry import build_dataset
from tests.dataset_files import png, write_cityscapes_mtan, write_nyu_adashare, write_taskonomy

WRITERS = {
    "nyuv2": (write_nyu_adashare, {"crop": [4, 6]}),
    "cityscapes": (write_cityscapes_mtan, {"crop": [4, 6]}),
    "taskonomy": (write_taskonomy, {"crop": [4, 6]}),
}


def bundle(name, root, cache, **options):
    return build_dataset(name, {"root": str(root), "array_cache": cache, **options})


def samples(split, seed=0):
    """Every sample of ``split`` in order, the augmentation drawn from ``seed``."""
    torch.manual_seed(seed)
    return [split[i] for i in range(len(split))]


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_cached_dataset_yields_the_tensors_its_files_give(name, tmp_path):
    writer, options = WRITERS[name]
    writer(tmp_path / "data")
    files = bundle(name, tmp_path / "data", None, **options)
    cached = bundle(name, tmp_path / "data", str(tmp_path / "cache"), **options)
    assert cached.splits["train"].arrays.cached == set(cached.splits["train"].decoders)
    for split in ("train", "test"):
        read, kept = samples(files.splits[split]), samples(cached.splits[split])
        assert len(read) == len(kept) > 0
        for a, b in zip(read, kept, strict=True):
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_the_cache_is_built_once_and_a_changed_file_is_read_again(tmp_path):
    write_nyu_adashare(tmp_path / "data")
    cache = str(tmp_path / "cache")
    first = bundle("nyuv2", tmp_path / "data", cache)
    (images,) = [p for p in first.splits["train"].arrays.folder.glob("image.npy")]
    built = images.stat().st_mtime_ns
    second = bundle("nyuv2", tmp_path / "data", cache)
    assert images.stat().st_mtime_ns == built  # nothing rewritten
    assert torch.equal(first.splits["train"][0]["image"], second.splits["train"][0]["image"])
    changed = (
        tmp_path
        / "data"
        / first.splits["train"].samples[0].paths["image"].relative_to(tmp_path / "data")
    )
    new_pixels = np.full((6, 8, 3), 7, np.uint8)
    png(changed, new_pixels)
    os.utime(changed, ns=(built + 10**9, built + 10**9))  # a time the cache has not seen
    third = bundle("nyuv2", tmp_path / "data", cache)
    assert torch.equal(third.splits["train"][0]["image"], torch.full((3, 6, 8), 7 / 255))


def test_a_field_whose_files_differ_in_shape_is_read_from_its_files(tmp_path):
    write_nyu_adashare(tmp_path / "data")
    odd = tmp_path / "data" / "img" / "0002.png"
    png(odd, np.zeros((6, 8, 4), np.uint8))  # RGBA among RGB files: another shape
    cached = bundle("nyuv2", tmp_path / "data", str(tmp_path / "cache"), holdout=0.0001)
    arrays = cached.splits["train"].arrays
    assert "image" not in arrays.cached and "seg" in arrays.cached
    files = bundle("nyuv2", tmp_path / "data", None, holdout=0.0001)
    for a, b in zip(samples(files.splits["train"]), samples(cached.splits["train"]), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_file_that_cannot_be_read_is_named_when_the_cache_is_built(tmp_path):
    """With the cache, an unreadable file is found when the dataset opens, not mid-training."""
    write_nyu_adashare(tmp_path / "data")
    (tmp_path / "data" / "seg" / "0002.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read image .*seg/0002.png"):
        bundle("nyuv2", tmp_path / "data", str(tmp_path / "cache"))


def test_prepare_data_builds_a_sweeps_array_cache_before_it_runs(tmp_path, capsys):
    from benchmarks.tools import prepare_data

    write_nyu_adashare(tmp_path / "data")
    overrides = [
        "experiment=smoke",
        "dataset=nyuv2",
        f"dataset.root={tmp_path / 'data'}",
        f"dataset.array_cache={tmp_path / 'arrays'}",
        "method=dense",
    ]
    assert prepare_data.main(overrides) == 0
    assert "nyuv2/train: 2 samples" in capsys.readouterr().out
    folders = {p.parent for p in (tmp_path / "arrays").rglob("image.npy")}
    assert len(folders) == 2  # train, and test (which val shares)
    for folder in folders:
        names = {p.name for p in folder.glob("*.npy")}
        assert names == {"image.npy", "seg.npy", "normal.npy", "depth.npy"}


@pytest.mark.parametrize("name", list(WRITERS))
def test_decoding_only_the_cropped_pixels_gives_what_decoding_whole_files_gives(name, tmp_path):
    """Training samples decode only the pixels the augmentation reads (``from_raw``); decoding
    every field whole first (``pixelwise=False``, as a resizing decoder needs) gives the same
    tensors: labels exactly, bilinear fields to float rounding."""
    writer, options = WRITERS[name]
    writer(tmp_path / "data")
    split = bundle(name, tmp_path / "data", str(tmp_path / "cache"), **options).splits["train"]
    cropped = [sample for seed in range(8) for sample in samples(split, seed)]
    split.pixelwise = False
    whole = [sample for seed in range(8) for sample in samples(split, seed)]
    for a, b in zip(cropped, whole, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape
            if split.transform.is_bilinear(key):
                assert torch.allclose(a[key], b[key], atol=1e-6)
            else:
                assert torch.equal(a[key], b[key])
