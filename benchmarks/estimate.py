"""``python -m benchmarks.estimate [OVERRIDES...]``: a sweep's wall time on this hardware, from
measured steps and data-path costs, before it runs (``benchmarks.tools.estimate``)."""

import sys

from benchmarks.tools.estimate import main

if __name__ == "__main__":
    sys.exit(main())
