"""Layerwise IoU of per-task masks, by hand."""

from __future__ import annotations

import torch

from benchmarks.cells.task_masks import task_mask_iou


def test_task_mask_iou_per_shared_layer_and_pair():
    owners = {"enc.0": "shared", "enc.1": "shared", "head.a": "a"}
    task_masks = {
        "a": {
            "enc.0": torch.tensor([1, 1, 0, 0]),
            "enc.1": torch.tensor([1, 0]),
            "head.a": torch.tensor([1]),
        },
        "b": {"enc.0": torch.tensor([1, 0, 1, 0]), "enc.1": torch.tensor([1, 0])},
    }
    frame = task_mask_iou(task_masks, owners)
    assert frame["layer"].tolist() == ["enc.0", "enc.1"]  # heads are not shared: not compared
    assert frame["pair"].tolist() == ["a-b", "a-b"]
    assert frame["iou"].tolist() == [1 / 3, 1.0]
