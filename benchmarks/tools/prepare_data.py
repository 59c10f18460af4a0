"""``python -m benchmarks.tools.prepare_data [OVERRIDES...]``: open every dataset a sweep would
use, now: file datasets read their files into the array cache (``dataset.array_cache``) and the
synthetic dataset renders its splits. Run it once before jobs start on several hosts, so they
find the arrays ready instead of building them side by side."""

from __future__ import annotations

import json

from benchmarks.cells.builders import cell_dataset
from benchmarks.sweep.expand import expand_sweep
from benchmarks.tools.overrides import default_config, overrides_parser


def main(argv: list[str] | None = None) -> int:
    parser = overrides_parser("python -m benchmarks.tools.prepare_data", __doc__)
    args = parser.parse_args(argv)
    opened = set()
    for cell in expand_sweep(default_config(*args.overrides)):
        key = json.dumps(cell.dataset, sort_keys=True, default=str)
        if key not in opened:
            opened.add(key)
            for line in cell_dataset(cell).summary():
                print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
