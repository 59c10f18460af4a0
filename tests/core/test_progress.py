"""Progress lines of long passes: none for a short pass, an ETA from the measured rate."""

from __future__ import annotations

from core import progress
from core.progress import Progress, clock


def test_short_pass_is_silent_and_a_long_one_reports_its_eta(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    quiet = Progress("scoring", total=5, every_s=10.0)
    assert [quiet.step() for _ in range(5)] == [None] * 5
    slow = Progress("scoring", total=10, every_s=10.0)
    now[0] += 12.0  # first batch took 12 s: 9 left at 12 s each
    assert slow.step() == "scoring: 1/10 batches, about 1m48s left"
    now[0] += 5.0
    assert slow.step() is None  # less than every_s since the last line
    now[0] += 100.0
    assert slow.step(8) is None  # the last batch: done, nothing left to announce
    assert clock(59.6) == "1m00s"
