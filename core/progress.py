"""Progress of a long pass (scoring, evaluation) in the log: "label: k/n batches, about m:ss
left", at most every ``every_s`` seconds, so a pass of minutes on real data is never silent. A
pass shorter than ``every_s`` logs nothing."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("progress")
EVERY_S = 10.0


def clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


class Progress:
    """Counts the batches of one pass of ``total`` and logs how far it got, with an ETA."""

    def __init__(self, label: str, total: int, every_s: float = EVERY_S):
        self.label, self.total, self.every_s = label, total, every_s
        self.done = 0
        self.started = self.last = time.monotonic()

    def step(self, count: int = 1) -> str | None:
        """Count ``count`` more batches; returns the line it logged, if any."""
        self.done += count
        now = time.monotonic()
        if now - self.last < self.every_s or self.done >= self.total:
            return None
        self.last = now
        left = (now - self.started) / self.done * (self.total - self.done)
        line = f"{self.label}: {self.done}/{self.total} batches, about {clock(left)} left"
        log.info(line)
        return line
