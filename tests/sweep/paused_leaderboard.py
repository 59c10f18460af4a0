"""``python -m benchmarks.leaderboard`` that stops itself (SIGSTOP) at a chosen moment of its
writing, so a test can kill -9 it exactly there: right after it opened its ``K``-th output file
for writing (in the results folder or in the next generation's folder beside it; created or
truncated, nothing written yet), right after its ``K``-th rename, or right after the new
generation took the results folder's place (``swap``). With ``K`` past the last such moment it
runs to the end and prints the counts.

    python -m tests.sweep.paused_leaderboard open|rename|swap K RESULTS_DIR [leaderboard args...]
"""

from __future__ import annotations

import builtins
import io
import os
import runpy
import signal
import sys
from pathlib import Path

from benchmarks.reporting import staged

moment, target, results = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]).resolve()
seen = {"open": 0, "rename": 0, "swap": 0}


def reached(kind: str) -> None:
    seen[kind] += 1
    if kind == moment and seen[kind] == target:
        os.kill(os.getpid(), signal.SIGSTOP)  # the test kills us here


real_open, real_replace, real_swap = builtins.open, os.replace, staged._put_in_place


def output_folder(folder: Path) -> bool:
    """The results folder, or a generation of it being written beside it."""
    return folder == results or (
        folder.parent == results.parent and folder.name.startswith(f".{results.name}.")
    )


def open_and_maybe_stop(file, mode="r", *args, **kwargs):
    handle = real_open(file, mode, *args, **kwargs)
    writing = any(flag in mode for flag in "wax+")
    if (
        writing
        and isinstance(file, str | os.PathLike)
        and output_folder(Path(file).resolve().parent)
    ):
        reached("open")
    return handle


def replace_and_maybe_stop(source, destination, **kwargs):
    real_replace(source, destination, **kwargs)
    reached("rename")


def swap_and_maybe_stop(staging, folder):
    real_swap(staging, folder)
    reached("swap")


builtins.open = io.open = open_and_maybe_stop
staged._put_in_place = swap_and_maybe_stop
os.replace = replace_and_maybe_stop
sys.argv = ["benchmarks.leaderboard", *sys.argv[4:]]
try:
    runpy.run_module("benchmarks.leaderboard", run_name="__main__")
finally:
    print(f"opened {seen['open']} renamed {seen['rename']} swapped {seen['swap']}", file=sys.stderr)
