"""``python -m benchmarks.leaderboard``: print, write and plot the leaderboard from the MLflow store
(``benchmarks.reporting.leaderboard``)."""

import sys

from benchmarks.reporting.leaderboard import main

if __name__ == "__main__":
    sys.exit(main())
