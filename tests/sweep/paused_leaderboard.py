"""``python -m benchmarks.leaderboard`` that stops itself (SIGSTOP) at a chosen moment of its
writing, so a test can kill -9 it exactly there: right after it opened its ``K``-th file in the
results folder for writing (created or truncated, nothing written yet), or right after its
``K``-th rename. With ``K`` past the last such moment it runs to the end and prints the counts.

    python -m tests.sweep.paused_leaderboard open|rename K RESULTS_DIR [leaderboard args...]
"""

from __future__ import annotations

import builtins
import io
import os
import runpy
import signal
import sys
from pathlib import Path

moment, target, results = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]).resolve()
seen = {"open": 0, "rename": 0}


def reached(kind: str) -> None:
    seen[kind] += 1
    if kind == moment and seen[kind] == target:
        os.kill(os.getpid(), signal.SIGSTOP)  # the test kills us here


real_open, real_replace = builtins.open, os.replace


def open_and_maybe_stop(file, mode="r", *args, **kwargs):
    handle = real_open(file, mode, *args, **kwargs)
    writing = any(flag in mode for flag in "wax+")
    if writing and isinstance(file, str | os.PathLike) and Path(file).resolve().parent == results:
        reached("open")
    return handle


def replace_and_maybe_stop(source, destination, **kwargs):
    real_replace(source, destination, **kwargs)
    reached("rename")


builtins.open = io.open = open_and_maybe_stop
os.replace = replace_and_maybe_stop
sys.argv = ["benchmarks.leaderboard", *sys.argv[4:]]
try:
    runpy.run_module("benchmarks.leaderboard", run_name="__main__")
finally:
    print(f"opened {seen['open']} renamed {seen['rename']}", file=sys.stderr)
