"""``python -m benchmarks.tools.task_masks RUN_ID``: the layerwise IoU of a DiSparse-family
run's per-task masks (CSV and plot), rendered again from the run's ``analysis/task_masks.pt``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.cells.task_masks import figure_title, write_analysis
from benchmarks.tracking.arguments import add_store_arguments, store_uri
from benchmarks.tracking.schema import TASK_MASKS, artifact
from benchmarks.tracking.store import Tracker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tools.task_masks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_id", help="MLflow run id of a finished DiSparse-family run")
    add_store_arguments(parser)
    parser.add_argument("--out", default="results/analysis", help="folder for the CSV and plot")
    args = parser.parse_args(argv)
    tracker = Tracker(store_uri(args), args.experiment)
    try:
        state = tracker.download_torch(args.run_id, artifact(TASK_MASKS), "cpu")
    except Exception as error:  # MLflow raises several types for a missing artifact
        print(
            f"error: run {args.run_id} has no {artifact(TASK_MASKS)} ({error}); only methods "
            "that select per task (disparse_*) log it",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out) / args.run_id
    tags = tracker.client.get_run(args.run_id).data.tags
    title = figure_title(
        tags.get("method", "?"), float(tags.get("sparsity", "nan")), tags.get("seed", "?"),
        tags.get("dataset", "?"),
    )  # fmt: skip
    frame = write_analysis(state["task_masks"], state["owners"], out, title)
    print(frame.pivot(index="depth", columns="pair", values="iou").to_string(float_format="%.3f"))
    print(f"\nwritten: {out}/task_mask_iou.csv, {out}/task_mask_iou.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
