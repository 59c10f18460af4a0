"""``python -m benchmarks.tools.power``: per setting and target sparsity, how far apart two
methods must be for the seeds to tell them apart: the median spread of paired Δm differences,
the smallest difference detectable with 3, 5, 8 and 10 seeds (power 0.8, Holm over the
comparisons with the best), and how many method pairs the store's runs separate after Holm's
correction over all pairs. The basis for choosing the number of seeds."""

from __future__ import annotations

import argparse
import sys

from tabulate import tabulate

from benchmarks.reporting.leaderboard import store_settings
from benchmarks.reporting.power import SEED_COUNTS, power_at
from benchmarks.reporting.settings import UNPRUNED_KINDS
from benchmarks.tracking.arguments import add_store_arguments, store_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tools.power", description=__doc__)
    add_store_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = store_settings(store_uri(args), args.experiment)
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not settings:
        print("no finished runs")
    header = ["sparsity %", "methods", "seeds", "spread", "pairs separable (Holm)"]
    header += [f"detectable, {n} seeds" for n in SEED_COUNTS]
    for setting in settings:
        runs = setting.runs
        levels = sorted(runs.loc[~runs["kind"].isin(UNPRUNED_KINDS), "sparsity"].unique())
        rows = []
        for level in levels:
            found = power_at(runs, level)
            if found is not None:
                rows.append(
                    [f"{100 * level:g}", found.methods, found.seeds, f"{found.spread:.2f}",
                     f"{found.separable} of {found.pairs}",
                     *(f"{found.detectable[n]:.2f}" for n in SEED_COUNTS)]
                )  # fmt: skip
        if rows:
            print(f"## {setting.title}\n")
            print(tabulate(rows, headers=header, tablefmt="github", disable_numparse=True))
            print(
                "\nspread: median over method pairs of the SD of their paired Δm differences "
                "over seeds; detectable: the smallest mean difference (Δm points) a paired t-test "
                "finds with power 0.8 at alpha 0.05 / (methods - 1).\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
