"""One sweep from its composed config, as ``python -m benchmarks.run`` runs it (in the process, or
in each job of a Hydra launcher): prepare and check every cell, run them, write the leaderboard."""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig

log = logging.getLogger("benchmarks.run")


def sweep(cfg: DictConfig) -> None:
    """Exit 2 on a configuration error (before any cell), 1 when a cell failed or the closing
    leaderboard could not be read from the store (not in a multirun: its jobs report through
    Hydra)."""
    from benchmarks.reporting.leaderboard import leaderboard_after_sweep
    from benchmarks.reporting.settings import Comparison
    from benchmarks.sweep.estimate import log_estimate, wants_estimate
    from benchmarks.sweep.setup import execute_sweep, is_multirun, prepare_sweep

    try:
        comparison = Comparison(cfg.leaderboard.baseline, cfg.leaderboard.delta_m)
        cells, resources, workers, threads = prepare_sweep(cfg)
        estimating = wants_estimate(cfg.get("estimate", "auto"), resources.device)
    except (ValueError, KeyError, LookupError, FileNotFoundError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        log.error("configuration error: %s", message)
        sys.exit(2)
    if estimating and not is_multirun():
        log_estimate(cells, resources, workers)
    log.info(
        "%d cell(s) on %s; tracking %s (MLflow experiment %s)",
        len(cells),
        resources.device,
        cfg.tracking.uri,
        cfg.tracking.experiment,
    )
    report = execute_sweep(cells, resources, workers, threads)
    log.info("sweep: %s", report.summary())
    written = True
    if cfg.leaderboard.enabled and not is_multirun():
        written = leaderboard_after_sweep(
            cfg.tracking.uri, cfg.tracking.experiment, cfg.results_dir, comparison
        )
    if (report.failed or not written) and not is_multirun():
        sys.exit(1)
