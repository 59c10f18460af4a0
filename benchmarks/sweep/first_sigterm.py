"""Only the first SIGTERM stops a sweep process; later ones are ignored.

The first starts the stop: the running cell's run is marked KILLED (a checkpointing cell saves
first). Senders often send more while that is written, and one that interrupted the write left
the run RUNNING: a process pool terminates its remaining workers as soon as one worker has
stopped, and submitit's interrupt sends two. SIGKILL and Ctrl-C still end the process at once.
"""

from __future__ import annotations

import signal
from types import FrameType


def install_first_sigterm_only() -> None:
    """The suite's SIGTERM handler (``benchmarks.training.preemption``) for the first SIGTERM."""
    from benchmarks.training import preemption

    preemption.install()
    suite_handler = signal.getsignal(signal.SIGTERM)

    def first_only(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        suite_handler(signum, frame)  # type: ignore[operator]

    signal.signal(signal.SIGTERM, first_only)
