"""SIGTERM, as ``kill`` and SLURM (before preempting a job) send it.

Outside a checkpointing training loop it stops the process at once, as Ctrl-C does: the running
cell's run is marked KILLED, not left RUNNING. Inside a training loop that writes checkpoints it
lets the current step finish; the loop then saves a checkpoint and stops, so a rerun (or the
requeued job) resumes the cell from that step.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

_deferring = False  # a checkpointing training loop is running
_requested = False  # SIGTERM arrived while deferring


def install() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, _frame) -> None:
    global _requested
    if _deferring:
        _requested = True
        return
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def deferred(enabled: bool) -> Iterator[None]:
    """While inside, SIGTERM only sets ``stop_requested()`` (when ``enabled``)."""
    global _deferring
    previous, _deferring = _deferring, enabled or _deferring
    try:
        yield
    finally:
        _deferring = previous


def stop_requested() -> bool:
    return _requested
