"""``python -m benchmarks.compare_runs``: are two stores' results the same, run by run?
(``benchmarks.tools.compare_runs``)."""

import sys

from benchmarks.tools.compare_runs import main

if __name__ == "__main__":
    sys.exit(main())
