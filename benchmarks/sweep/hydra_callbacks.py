"""Hydra callback: after a ``-m`` multirun, print and write the leaderboard once."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class LeaderboardAfterMultirun(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.leaderboard.enabled:
            return
        from benchmarks.reporting.leaderboard import leaderboard_after_sweep
        from benchmarks.reporting.settings import Comparison

        leaderboard_after_sweep(
            config.tracking.uri,
            config.tracking.experiment,
            config.results_dir,
            Comparison(config.leaderboard.baseline, config.leaderboard.delta_m),
        )
