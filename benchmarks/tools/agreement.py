"""``python -m benchmarks.tools.agreement``: how each setting of a store agrees with the DiSparse
paper's table for its dataset (Kendall's tau and each within-group ordering at 90%; embedded
settings against the dataset they stand in for). The leaderboard prints the same section under
each setting's tables."""

from __future__ import annotations

import argparse
import sys

from benchmarks.reporting.agreement import agreement_section
from benchmarks.reporting.leaderboard import store_settings
from benchmarks.tracking.arguments import add_store_arguments, store_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tools.agreement", description=__doc__
    )
    add_store_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = store_settings(store_uri(args), args.experiment)
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    printed = False
    for setting in settings:
        dataset = str(setting.runs["dataset"].iloc[0])
        lines = agreement_section(dataset, list(setting.tasks), setting.runs)
        if lines:
            print("\n".join([f"## {setting.title}", "", *lines]))
            printed = True
    if not printed:
        print("no setting of this store has a paper counterpart with runs at 90%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
