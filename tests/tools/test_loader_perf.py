"""The loader benchmark reads real NYUv2 files, replicated; skipped where the shared samples are
absent."""

from __future__ import annotations

import pytest

from benchmarks.tools.loader_perf import images_per_second, replicate_nyuv2
from datasets.registry import build_dataset
from tests.helpers import SHARED_DATA

SAMPLES = SHARED_DATA / "nyuv2_adashare_samples"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/data/nyuv2_adashare_samples is absent")
def test_replicated_samples_load_with_and_without_workers(tmp_path):
    count = replicate_nyuv2(SAMPLES, tmp_path, copies=3)
    assert count == 3 * len(list((SAMPLES / "img").glob("*.png")))
    bundle = build_dataset("nyuv2", {"root": str(tmp_path), "crop": [64, 64], "holdout": 0.25})
    assert len(bundle.splits["train"]) + len(bundle.splits["test"]) == count
    for workers in (0, 1):
        assert images_per_second(bundle.splits["train"], 2, workers, batches=2) > 0


def test_a_folder_without_samples_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        replicate_nyuv2(tmp_path, tmp_path / "out", copies=1)
