"""``python -m benchmarks.convergence``: is the dense baseline converged? (dense at 1x and 2x steps)
(``benchmarks.tools.convergence``)."""

import sys

from benchmarks.tools.convergence import main

if __name__ == "__main__":
    sys.exit(main())
