"""Hydra callback: after a ``-m`` multirun, print and write the leaderboard once."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class LeaderboardAfterMultirun(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.leaderboard.enabled:
            return
        from benchmarks.reporting.leaderboard import write_leaderboard
        from benchmarks.reporting.settings import Comparison

        print(
            write_leaderboard(
                config.tracking.uri,
                config.tracking.experiment,
                config.results_dir,
                Comparison(config.leaderboard.baseline, config.leaderboard.delta_m),
            )
        )
        log.info("leaderboard written under %s/", config.results_dir)
