"""``python -m benchmarks.run [overrides]``: the sweep (Hydra app; ``--help`` lists options)."""

from __future__ import annotations

import logging
import sys

from benchmarks.sweep.requeue import JobRequeue, preempt_with_sigterm

preempt_with_sigterm()  # before Hydra's submitit launcher imports submitit

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

log = logging.getLogger("benchmarks.run")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from benchmarks.reporting.leaderboard import write_leaderboard
    from benchmarks.reporting.settings import Comparison
    from benchmarks.sweep.setup import execute_sweep, is_multirun, prepare_sweep
    from benchmarks.training import preemption

    requeue = JobRequeue()  # submitit's handler, inside a SLURM job
    preemption.install()

    try:
        comparison = Comparison(cfg.leaderboard.baseline, cfg.leaderboard.delta_m)
        cells, resources, workers, threads = prepare_sweep(cfg)
    except (ValueError, KeyError, LookupError, FileNotFoundError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        log.error("configuration error: %s", message)
        sys.exit(2)
    log.info(
        "%d cell(s) on %s; tracking %s (experiment %s)",
        len(cells),
        resources.device,
        cfg.tracking.uri,
        cfg.tracking.experiment,
    )
    try:
        report = execute_sweep(cells, resources, workers, threads)
    except KeyboardInterrupt as stopped:
        if "SIGTERM" in str(stopped):
            requeue.after_sigterm()
        raise
    log.info("sweep: %s", report.summary())
    if cfg.leaderboard.enabled and not is_multirun():
        print(
            write_leaderboard(
                cfg.tracking.uri,
                cfg.tracking.experiment,
                cfg.results_dir,
                comparison,
            )
        )
        log.info("leaderboard written under %s/", cfg.results_dir)
    if report.failed and not is_multirun():
        sys.exit(1)


if __name__ == "__main__":
    from benchmarks.sweep.overrides import check_command_line

    check_command_line(sys.argv[1:])
    main()
