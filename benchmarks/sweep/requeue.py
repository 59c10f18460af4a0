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

from benchmarks.sweep.first_sigterm import install_first_sigterm_only

PREEMPT_SIGNAL = "SUBMITIT_PREEMPT_SIGNAL"
Handler = Callable[[int, FrameType | None], object]


def preempt_with_sigterm() -> None:
    """Make SIGTERM submitit's preemption signal (unless the user chose one): SLURM's partition
    preemption and ``scontrol requeue`` send SIGTERM, and submitit would ignore it and rerun the
    job from its start. submitit reads the variable when imported, in the submitting process (for
    sbatch ``--signal``) and in the job, which inherits it."""
    os.environ.setdefault(PREEMPT_SIGNAL, "TERM")


def _submitits_handler() -> Handler | None:
    """The SIGTERM handler installed now if it is submitit's (inside one of its jobs)."""
    handler = signal.getsignal(signal.SIGTERM)
    module = getattr(handler, "__module__", "") or ""
    return handler if module.startswith("submitit.") else None  # type: ignore[return-value]


@contextmanager
def sigterm_stops_the_sweep() -> Iterator[None]:
    """The suite's SIGTERM handling for the block (a checkpointing cell saves, then stops; its
    run is KILLED), and inside a submitit job the job handed back to submitit afterwards: it
    checkpoints (Hydra's launcher resubmits the same job) and requeues. Any SIGTERM after the
    first (submitit's own interrupt sends two) is ignored."""
    submitit = _submitits_handler()  # before ours replaces it
    install_first_sigterm_only()
    try:
        yield
    except KeyboardInterrupt as stopped:
        if submitit is not None and "SIGTERM" in str(stopped):  # later SIGTERMs ignored by now
            submitit(signal.SIGTERM, None)
        raise
