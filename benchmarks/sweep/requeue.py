"""A sweep inside a SLURM job of Hydra's submitit launcher, stopped by SIGTERM (preemption, the
time limit, ``scontrol requeue``): once its cell has saved a checkpoint and been marked KILLED,
submitit's own handler requeues the job, whose rerun of the same sweep resumes that cell.

Our SIGTERM handler (``benchmarks.training.preemption``) replaces submitit's while cells run, so
the handler that was installed before it is kept and called when the sweep has stopped."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

PREEMPT_SIGNAL = "SUBMITIT_PREEMPT_SIGNAL"
Handler = Callable[[int, FrameType | None], object]


def preempt_with_sigterm() -> None:
    """Make SIGTERM submitit's preemption signal (unless the user chose one): SLURM's partition
    preemption and ``scontrol requeue`` send SIGTERM, and submitit would ignore it and rerun the
    job from its start. submitit reads the variable when imported, in the submitting process (for
    sbatch ``--signal``) and in the job, which inherits it."""
    os.environ.setdefault(PREEMPT_SIGNAL, "TERM")


class JobRequeue:
    """The SIGTERM handler installed before ours; ``after_sigterm()`` hands the job back to it
    when it is submitit's (a no-op outside submitit jobs)."""

    def __init__(self) -> None:
        handler = signal.getsignal(signal.SIGTERM)
        module = getattr(handler, "__module__", "") or ""
        self.handler: Handler | None = handler if module.startswith("submitit.") else None

    def after_sigterm(self) -> None:
        """Let submitit checkpoint (Hydra's launcher resubmits the same job) and requeue. A
        second SIGTERM while it does so (submitit's own interrupt sends two) is ignored."""
        if self.handler is None:
            return
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.handler(signal.SIGTERM, None)


@contextmanager
def sigterm_stops_the_sweep() -> Iterator[None]:
    """The suite's SIGTERM handling for the block (a checkpointing cell saves, then stops; its
    run is KILLED), and inside a submitit job the job handed back to submitit afterwards."""
    from benchmarks.training import preemption

    requeue = JobRequeue()  # before ours replaces it
    preemption.install()
    try:
        yield
    except KeyboardInterrupt as stopped:
        if "SIGTERM" in str(stopped):
            requeue.after_sigterm()
        raise
