"""``python -m benchmarks.estimate [OVERRIDES...] [--workers 1 8]``: how long a sweep will take on
this hardware, before spending it (``benchmarks.sweep.estimate`` measures and counts)."""

from __future__ import annotations

import torch

from benchmarks.cells.builders import cell_dataset
from benchmarks.sweep.device import resolve_device
from benchmarks.sweep.estimate import __doc__ as HOW
from benchmarks.sweep.estimate import estimate_report
from benchmarks.sweep.expand import expand_sweep
from benchmarks.tools.overrides import default_config, overrides_parser


def main(argv: list[str] | None = None) -> int:
    parser = overrides_parser("python -m benchmarks.estimate", f"{__doc__}\n{HOW}")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 8],
        help="worker counts (GPUs on CUDA) to give the wall time for (default: 1 8)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        metavar="NAME",
        help="only these methods' cells of the sweep (as a multirun -m method=a,b runs them), "
        "with the dense cells they start from",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per measurement")
    args = parser.parse_args(argv)
    cfg = default_config(*args.overrides)
    device = resolve_device(str(cfg.device))
    if device.type == "cpu" and cfg.get("threads_per_cell") is not None:
        torch.set_num_threads(int(cfg.threads_per_cell))
    cells = expand_sweep(cfg)
    if args.methods:
        chosen = set(args.methods) | {"dense"}
        cells = [cell for cell in cells if cell.method_name in chosen]
    print(estimate_report(cells, cell_dataset, device, args.workers, args.repeats))
    return 0
