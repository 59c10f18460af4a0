"""``python -m benchmarks.convergence [overrides]``: is the dense baseline trained to convergence?

Trains ``dense`` at the protocol's length and at twice that length for every seed of the sweep
(ordinary cells in the configured MLflow store: the default-length ones are the default sweep's
dense cells, and finished cells are not retrained), then prints, per seed, the delta-m of the
longer run against the default-length run of the same seed. The protocol counts as converged
when the mean change is below ``--threshold`` points (default 1), because a compressed method
"beating dense" by less than that could be a dense model trained too briefly.
"""

from __future__ import annotations

import math
import sys

from mlflow.entities import Run

from benchmarks.reporting.delta_m import delta_m
from benchmarks.reporting.statistics import t_interval
from benchmarks.sweep.expand import expand_sweep
from benchmarks.sweep.setup import execute_sweep, prepare_sweep
from benchmarks.tools.overrides import default_config, overrides_parser
from benchmarks.tracking.schema import TEST


def dense_cells(overrides: list[str], factor: int):
    """(config, cells at the protocol's length, the same cells ``factor`` times longer)."""
    cfg = default_config(*overrides, "method=dense")
    steps, name = int(cfg.protocol.steps), str(cfg.protocol.name)
    longer = default_config(
        *overrides,
        "method=dense",
        f"protocol.steps={factor * steps}",
        f"protocol.name={name}_x{factor}",  # its own leaderboard section, named apart
    )
    return cfg, expand_sweep(cfg), expand_sweep(longer)


def metrics_on_test_split(run: Run) -> dict[str, float]:
    """``<task>/<metric>`` test metrics of a finished run."""
    metrics = run.data.metrics
    return {k.removeprefix(TEST): v for k, v in metrics.items() if k.startswith(TEST)}


def main(argv: list[str] | None = None) -> int:
    parser = overrides_parser("python -m benchmarks.convergence", __doc__)
    parser.add_argument("--factor", type=int, default=2, help="longer run = factor x steps")
    parser.add_argument("--threshold", type=float, default=1.0, help="points of delta-m")
    args = parser.parse_args(argv)
    cfg, base, longer = dense_cells(args.overrides, args.factor)
    cells, resources, workers, threads = prepare_sweep(cfg, base + longer)
    report = execute_sweep(cells, resources, workers, threads)
    if report.failed:
        print(report.summary(), file=sys.stderr)
        return 1
    base, longer = cells[: len(base)], cells[len(base) :]  # as run: with their thread count
    steps = base[0].protocol["steps"]
    print(f"dense: delta-m of {args.factor * steps} steps against {steps} steps, same seed")
    changes = []
    for short, long in zip(base, longer, strict=True):
        tasks = {t.name: t.kind for t in resources.dataset(short).tasks}
        change = delta_m(
            metrics_on_test_split(resources.tracker.find_finished(long.key)),
            metrics_on_test_split(resources.tracker.find_finished(short.key)),
            tasks,
        )
        changes.append(change)
        print(f"  seed {short.seed}: {change:+.2f}")
    mean, half = t_interval(changes)
    interval = "" if math.isnan(half) else f" ± {half:.2f} (95% interval)"
    verdict = "converged" if abs(mean) < args.threshold else "NOT converged"
    print(f"  mean {mean:+.2f}{interval}: {verdict} (threshold {args.threshold:g} points)")
    return 0
