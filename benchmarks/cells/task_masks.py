"""Task agreement of per-task masks, layer by layer (the DiSparse paper's discussion section).

For methods that select weights per task (the DiSparse family), the IoU of two tasks' masks on
each shared layer shows where the tasks stop agreeing on which weights matter (the paper's
"watershed" layer). Runs log ``analysis/task_masks.pt``, ``analysis/task_mask_iou.csv`` and
``analysis/task_mask_iou.png``; ``python -m benchmarks.tools.task_masks RUN_ID`` renders them
again.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pandas as pd
import torch

from benchmarks.tracking.run_log import TrackedRun
from benchmarks.tracking.schema import TASK_MASKS
from methods.masks import MaskSet
from methods.networks.base import SHARED


def task_mask_iou(task_masks: dict[str, dict[str, torch.Tensor]], owners: dict[str, str]):
    """One row per (shared layer, task pair): |A and B| / |A or B| of the two tasks' masks."""
    shared = [n for n, owner in owners.items() if owner == SHARED]  # model order = depth order
    rows = []
    for depth, name in enumerate(shared):
        for a, b in itertools.combinations(sorted(task_masks), 2):
            mask_a, mask_b = task_masks[a][name].bool(), task_masks[b][name].bool()
            union = int((mask_a | mask_b).sum())
            iou = int((mask_a & mask_b).sum()) / union if union else float("nan")
            rows.append({"layer": name, "depth": depth, "pair": f"{a}-{b}", "iou": iou})
    return pd.DataFrame(rows)


def plot_iou(frame: pd.DataFrame, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for pair, rows in frame.groupby("pair"):
        ax.plot(rows["depth"], rows["iou"], marker="o", label=pair)
    ax.set_xlabel("shared layer (input -> output)")
    ax.set_ylabel("IoU of the tasks' masks")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure_title(method: str, sparsity: float, seed: int | str, dataset: str) -> str:
    """What the IoU plot shows, for whom: the method, sparsity, seed and dataset of the run."""
    return (
        f"Where the tasks' masks agree, layer by layer: {method} at {100 * sparsity:g}% "
        f"sparsity, seed {seed}, {dataset}"
    )


def write_analysis(task_masks, owners, out: Path, title: str = "") -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    frame = task_mask_iou(task_masks, owners)
    frame.to_csv(out / "task_mask_iou.csv", index=False, float_format="%.6g")
    plot_iou(frame, out / "task_mask_iou.png", title)
    return frame


def log_task_mask_analysis(run: TrackedRun, masks: MaskSet, title: str) -> None:
    """Save the per-task masks and their layerwise IoU (CSV and plot, ``title`` on it) as run
    artifacts."""
    assert masks.task_masks is not None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        state = {
            "task_masks": {
                t: {n: m.cpu() for n, m in tm.items()} for t, tm in masks.task_masks.items()
            },
            "owners": masks.owners,
        }
        folder, filename = TASK_MASKS
        torch.save(state, out / filename)
        write_analysis(masks.task_masks, masks.owners, out, title)
        for name in (filename, "task_mask_iou.csv", "task_mask_iou.png"):
            run.artifact(out / name, folder)
