"""The MLflow client a sweep logs through: a signal never stops a store call halfway, and a call
whose reply broke off mid-way is asked again when asking twice does no harm.

Signals: SIGTERM (the suite's handler, ``benchmarks.training.preemption``) and Ctrl-C raise
``KeyboardInterrupt`` wherever the main thread is. Raised inside a SQLite write, it left the write
lock held by a connection its traceback kept alive: marking the run KILLED then waited 20 s per
write and failed ("database is locked"), a minute in all, and the run stayed RUNNING. Held until
the call returns, the signal stops the sweep a moment later with the store consistent. A second
one while a call waits (a server that is down: MLflow retries for minutes) is delivered at once.

Broken replies: MLflow retries a request that got no reply, but not one whose reply broke off
(a server killed while answering: ``IncompleteRead``); that failed the cell.
"""

from __future__ import annotations

import functools
import inspect
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RETRY_PAUSES_S = (1.0, 2.0, 4.0)  # then the last try's error stands
# Calls that leave the store as one would when asked twice: reads, tags and end states, metrics
# (the store drops an exact duplicate) and artifact files (overwritten).
IDEMPOTENT = frozenset(
    {
        "get_experiment",
        "get_experiment_by_name",
        "get_logged_model",
        "get_metric_history",
        "get_run",
        "list_artifacts",
        "log_artifact",
        "log_batch",
        "search_experiments",
        "search_logged_models",
        "search_runs",
        "set_experiment_tag",
        "set_tag",
        "set_terminated",
    }
)


class StoreClient(MlflowClient):
    """``MlflowClient`` whose public calls hold SIGTERM and SIGINT until they return (main thread)
    and, for the ``IDEMPOTENT`` ones, are tried again after a reply that broke off."""

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name.startswith("_") or not inspect.ismethod(attribute):
            return attribute
        return functools.partial(_call, attribute, name in IDEMPOTENT)


def _call(method: Callable[..., Any], idempotent: bool, *args: Any, **kwargs: Any) -> Any:
    with signals_held():
        if not idempotent:
            return method(*args, **kwargs)
        for pause in RETRY_PAUSES_S:
            try:
                return method(*args, **kwargs)
            except MlflowException as error:
                if not reply_broke_off(error):
                    raise
                log.warning("%s: %s; asking again in %.0f s", method.__name__, error, pause)
                time.sleep(pause)
        return method(*args, **kwargs)


def reply_broke_off(error: MlflowException) -> bool:
    """MLflow wraps the HTTP error without chaining it; its context is the original."""
    return isinstance(error.__context__, requests.exceptions.ChunkedEncodingError)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT arriving inside the block reach their handler when it ends (in the main
    thread, where Python runs signal handlers; other threads are never interrupted)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}

    def hold(signum: int, frame: Any) -> None:
        if caught:  # asked twice: stop now
            _deliver(previous[signum], signum, frame)
        caught.append(signum)

    previous.update((s, signal.signal(s, hold)) for s in HELD_SIGNALS)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            _deliver(previous[caught[0]], caught[0], None)


def _deliver(handler: Any, signum: int, frame: Any) -> None:
    """What the signal would have done without the hold."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
