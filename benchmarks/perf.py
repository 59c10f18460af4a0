"""``python -m benchmarks.perf``: masked vs dense step time, cell times, workers, loader
throughput (``benchmarks.tools.perf``)."""

import sys

from benchmarks.tools.perf import main

if __name__ == "__main__":
    sys.exit(main())
