"""What a run records to rebuild its network later (``network.json``): the cell as configured,
its tasks and image shape. Rebuilding is ``benchmarks.cells.logged_network``'s job; it is kept
out of the cell runner's imports, so the channel surgery it uses counts only in the code
fingerprint of the cells that prune channels."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from benchmarks.cells.cell import Cell
from datasets.registry import DatasetBundle

FORMAT = 1  # network.json's layout


def network_description(cell: Cell, bundle: DatasetBundle) -> dict[str, Any]:
    """What the network is rebuilt from: the cell as configured, its tasks, its image shape."""
    return {
        "format": FORMAT,
        "cell": cell.as_dict(),
        "tasks": [asdict(task) for task in bundle.tasks],
        "image_shape": list(bundle.image_shape),
    }
